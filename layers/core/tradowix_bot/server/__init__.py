"""What runs behind API Gateway (the Lambda layer ships it): keys, authentication, market data, stores, live fan-out."""
