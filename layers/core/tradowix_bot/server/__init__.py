"""What runs behind API Gateway: settings, AWS clients, keys and authentication, market data,
the stores (S3 candles, DynamoDB state), the live WebSocket and its fan-out, the admin side, and
`services.py`, where all of it is built (one composition root).

The Lambda layer ships this package and the shared model (layers/core/Makefile); the collector
uses it too. It never imports client/, strategy/, collector/ or cli/
(tests/unit/test_package_layout.py).
"""
