"""boto3 clients, created once per process and principal (a warm Lambda container reuses them).

Time budget: inside a Lambda invocation (`budget(context)`), an AWS call attempt only starts
when the rest of the invocation's time can hold a whole attempt (connect + read timeout);
otherwise it fails at once with `CallBudgetExceeded`, which storage_errors turns into the
designed 503 with Retry-After. So a slow S3 or DynamoDB can no longer run the function into
its timeout (a bare 5xx from API Gateway): boto3's own retries (2 attempts x 7 s + backoff)
allowed ~15 s per call against a 10 s function.

No AWS call happens at import. The endpoint comes from AWS_ENDPOINT_URL (or a service's own
AWS_ENDPOINT_URL_<SERVICE>) when set (boto3 reads both natively), which is how the local stack
points everything at its emulator.

Credentials: on AWS each process has one principal (the function's or the task's role, from the
environment). The local stack runs several functions in one process, each with its own role's
credentials: it runs each invocation inside `acting_as(...)`, and clients follow.

The CLI, talking to a local stack it found through the stack's runtime file, hands the stack's
endpoint and credentials to `use_endpoint(Endpoint(...))`: every client made afterwards goes
there as that principal, whatever AWS_* variables the user's shell holds. The process
environment is never written (it would leak into child processes and mix with the user's own
AWS settings, e.g. a session token or a per-service endpoint).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import time
from dataclasses import dataclass

# Short enough that a whole attempt fits a 10 s function more than twice; DynamoDB and S3
# answer in milliseconds when healthy (a retry covers a lost packet).
CONNECT_TIMEOUT = 1
READ_TIMEOUT = 3
MAX_ATTEMPTS = 2  # one retry
ATTEMPT_SECONDS = CONNECT_TIMEOUT + READ_TIMEOUT  # the longest one attempt can take
ANSWER_RESERVE_SECONDS = 0.5  # kept back to answer (503) before the function times out

_clock = time.monotonic  # tests drive the budget through this
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "tradowix_aws_deadline", default=None
)


class CallBudgetExceeded(Exception):
    """Not enough of the invocation's time is left for another AWS call attempt."""


@contextlib.contextmanager
def budget(lambda_context):
    """AWS calls in this context must end before the Lambda invocation's time runs out."""
    remaining = getattr(lambda_context, "get_remaining_time_in_millis", None)
    if remaining is None:
        yield
        return
    token = _deadline.set(_clock() + remaining() / 1000 - ANSWER_RESERVE_SECONDS)
    try:
        yield
    finally:
        _deadline.reset(token)


def _check_budget(**_kwargs) -> None:
    deadline = _deadline.get()
    if deadline is None:
        return
    left = deadline - _clock()
    if left < ATTEMPT_SECONDS:
        raise CallBudgetExceeded(
            f"{max(left, 0):.1f} s of the invocation left; an AWS call attempt may take {ATTEMPT_SECONDS} s"
        )


@dataclass(frozen=True)
class Endpoint:
    """Where this process's clients go and as whom, given instead of read from the environment."""

    url: str
    services: tuple[tuple[str, str], ...] = ()  # (boto3 service name, URL) that differ from `url`
    access_key: str | None = None
    secret_key: str | None = None
    region: str | None = None

    @classmethod
    def from_variables(cls, url: str, variables: dict[str, str]) -> Endpoint:
        """From AWS_* variable names and values (AWS_ENDPOINT_URL_<SERVICE>, AWS_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION), without touching the environment."""
        prefix = "AWS_ENDPOINT_URL_"
        services = tuple(
            (name.removeprefix(prefix).lower(), value)
            for name, value in variables.items()
            if name.startswith(prefix)
        )
        return cls(
            url=variables.get("AWS_ENDPOINT_URL") or url,
            services=services,
            access_key=variables.get("AWS_ACCESS_KEY_ID"),
            secret_key=variables.get("AWS_SECRET_ACCESS_KEY"),
            region=variables.get("AWS_DEFAULT_REGION") or variables.get("AWS_REGION"),
        )

    def url_for(self, service: str) -> str:
        return dict(self.services).get(service, self.url)


_endpoint: Endpoint | None = None  # None: endpoints and credentials come from the environment


def use_endpoint(endpoint: Endpoint | None) -> None:
    """Clients made from now on in this process go to `endpoint` (None: back to the environment)."""
    global _endpoint
    reset()
    _endpoint = endpoint


def endpoint_url() -> str | None:
    """Where clients go when not to AWS itself (an emulator): the endpoint in use, else
    AWS_ENDPOINT_URL; None on AWS."""
    return _endpoint.url if _endpoint is not None else (os.environ.get("AWS_ENDPOINT_URL") or None)


def _endpoint_url_for(service: str) -> str | None:
    return _endpoint.url_for(service) if _endpoint is not None else None  # None: boto3 reads the environment


_lock = threading.Lock()
_principal: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "tradowix_aws_principal", default=None
)
_sessions: dict = {}
_clients: dict = {}
_resources: dict = {}


@contextlib.contextmanager
def acting_as(access_key: str, secret_key: str):
    """Make AWS calls in this context (and the threads and tasks it starts) with these credentials."""
    token = _principal.set((access_key, secret_key))
    try:
        yield
    finally:
        _principal.reset(token)


def current_principal() -> tuple[str, str] | None:
    return _principal.get()


def _session(principal=None):
    import boto3

    principal = principal or _principal.get()
    session = _sessions.get(principal)
    if session is None:
        with _lock:
            session = _sessions.get(principal)
            if session is None:
                if principal is None and _endpoint is not None and _endpoint.access_key:
                    session = boto3.session.Session(
                        aws_access_key_id=_endpoint.access_key,
                        aws_secret_access_key=_endpoint.secret_key,
                        region_name=_endpoint.region,
                    )
                elif principal is None:
                    session = boto3.session.Session()
                else:
                    session = boto3.session.Session(
                        aws_access_key_id=principal[0], aws_secret_access_key=principal[1]
                    )
                _sessions[principal] = session
    return session


def _config():
    from botocore.config import Config

    # Fail fast: a partner waiting on a dead endpoint should get a 503, not a Lambda timeout.
    return Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
    )


def client(service: str):
    key = (service, _principal.get())
    found = _clients.get(key)
    if found is None:
        with _lock:
            found = _clients.get(key)
        if found is None:
            found = _session(key[1]).client(
                service, config=_config(), endpoint_url=_endpoint_url_for(service)
            )
            found.meta.events.register_first("before-send", _check_budget)
            _make_exception_classes(found)
            with _lock:
                found = _clients.setdefault(key, found)
    return found


def _make_exception_classes(low_level_client) -> None:
    """botocore makes a client's exception classes on first use, without a lock: threads that
    first meet errors together each make their own, and an `except client.exceptions.X` in one
    names a class another's raise did not use (a collector crashed this way). Made here, before
    the client is shared."""
    low_level_client.exceptions  # noqa: B018 - the property makes and keeps them


def resource(service: str):
    key = (service, _principal.get())
    found = _resources.get(key)
    if found is None:
        found = _session(key[1]).resource(service, config=_config(), endpoint_url=_endpoint_url_for(service))
        found.meta.client.meta.events.register_first("before-send", _check_budget)
        _make_exception_classes(found.meta.client)
        with _lock:
            found = _resources.setdefault(key, found)
    return found


_tables: dict = {}


def table(name: str):
    """The DynamoDB Table `name`, made once per resource: boto3 builds a new class for every
    Table() (0.36 ms of CPU each here, and ~1,000 objects in reference cycles that only the
    garbage collector's full passes free: a local stack making one per request paused 250-300 ms
    in those passes, issue 16). Shared like the resource itself: its actions only call the
    thread-safe client."""
    dynamodb = resource("dynamodb")
    key = (_principal.get(), name)
    cached = _tables.get(key)
    if cached is None or cached[0] is not dynamodb:
        cached = _tables[key] = (dynamodb, dynamodb.Table(name))
    return cached[1]


_providers: dict = {}


def parameter(name: str, *, max_age: int) -> str | None:
    """A SecureString from SSM, decrypted, cached for `max_age` seconds per process and principal
    (Powertools Parameters). None when the parameter does not exist (not cached: it may be put
    any moment). Other failures are boto3's own exceptions (storage_errors maps them to 503)."""
    from aws_lambda_powertools.utilities.parameters import SSMProvider
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    ssm = client("ssm")
    provider = _providers.get(id(ssm))
    if provider is None:
        provider = _providers.setdefault(id(ssm), SSMProvider(boto3_client=ssm))
    try:
        return provider.get(name, decrypt=True, max_age=max_age)
    except GetParameterError as exc:
        cause = exc.__context__  # Powertools wraps boto3's error; the cause tells what happened
        if isinstance(cause, ssm.exceptions.ParameterNotFound):
            return None
        raise (cause or exc) from None


def credentials():
    """The current principal's botocore credentials (for requests boto3 does not make itself)."""
    return _session().get_credentials()


def clients_made() -> int:
    """How many clients and resources this process holds (benchmarks check when they are made)."""
    return len(_clients) + len(_resources)


def reset() -> None:
    """Forget cached clients and any endpoint in use (tests switch endpoints between sessions)."""
    global _endpoint
    _endpoint = None
    with _lock:
        _clients.clear()
        _resources.clear()
        _tables.clear()
        _sessions.clear()
        _providers.clear()


def unavailable_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean 'the data service cannot be reached' (mapped to 503)."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

    return (
        BotoConnectionError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
        CallBudgetExceeded,
    )


THROTTLE_CODES = {
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "InternalServerError",
}
