"""boto3 clients, created lazily and once per process (a warm Lambda container reuses them).

No AWS call happens at import. The endpoint comes from AWS_ENDPOINT_URL when set (boto3
reads it natively), which is how the local stack points everything at its emulator.
"""

from __future__ import annotations

import functools
import threading

_lock = threading.Lock()


@functools.cache
def _session():
    import boto3

    return boto3.session.Session()


def _config():
    from botocore.config import Config

    # Fail fast: a partner waiting on a dead endpoint should get a 503, not a Lambda timeout.
    return Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})


@functools.cache
def client(service: str):
    with _lock:
        return _session().client(service, config=_config())


@functools.cache
def resource(service: str):
    with _lock:
        return _session().resource(service, config=_config())


def reset() -> None:
    """Forget cached clients (tests switch endpoints between sessions)."""
    client.cache_clear()
    resource.cache_clear()
    _session.cache_clear()


def unavailable_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean 'the data service cannot be reached' (mapped to 503)."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

    return (BotoConnectionError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError)


THROTTLE_CODES = {
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "InternalServerError",
}
