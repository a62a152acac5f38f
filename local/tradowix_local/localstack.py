"""`tradowix chart --localstack`: S3 and SSM on a running LocalStack, DynamoDB embedded.

LocalStack's own client library (localstack-client) finds LocalStack's endpoint the way the
LocalStack tools do (LOCALSTACK_HOST, default localhost:4566; USE_SSL), so the stack goes where
`awslocal` would. Only S3 and SSM move there: free LocalStack's DynamoDB downloads DynamoDB Local
on first use (fails offline), so DynamoDB stays on the embedded emulator, IAM enforced.
"""

from __future__ import annotations

from localstack_client.config import get_service_endpoint

LOCALSTACK_SERVICES = ("s3", "ssm")


def localstack_endpoints() -> dict[str, str]:
    """{"s3": url, "ssm": url} of the LocalStack the environment names."""
    return {service: get_service_endpoint(service) for service in LOCALSTACK_SERVICES}
