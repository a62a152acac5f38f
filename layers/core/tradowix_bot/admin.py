"""The owner's admin panel: secret check, sessions, CSRF, login throttling, the session token.

- The admin secret lives in an SSM SecureString whose name the template passes in
  (ADMIN_SECRET_PARAMETER). Its value is either a hash made by `hash_secret` (what the
  local stack stores) or the secret itself (what an owner may put by hand); both verify.
- An admin session is a signed, expiring HttpOnly cookie (its own name and salt, so a
  partner cookie can never pass as one). It carries a random nonce; the CSRF token is an
  HMAC of that nonce, sent back by the page in a header on every write.
- Failed logins are counted per client address in the state table; after a few, every
  attempt from that address is refused with 429 + Retry-After for a time that doubles.
- The Tradowix session token is write-only: stored as a SecureString, never read back;
  only the time it was set is shown.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from . import aws
from .errors import BadRequest, Forbidden, RateLimited, Unauthorized
from .state import StateStore
from .storage_errors import translate

ADMIN_COOKIE_NAME = "twk_admin"
CSRF_HEADER = "X-CSRF-Token"
_SALT = "tradowix-admin-session"
_HASH_PREFIX = "pbkdf2_sha256"
_HASH_ITERATIONS = 200_000

FREE_FAILURES = 5  # wrong secrets allowed before the address is made to wait
MAX_LOCK_SECONDS = 15 * 60
FAILURE_MEMORY_SECONDS = 24 * 3600  # a quiet day forgets the failures (state-table TTL)

MAX_SESSION_TOKEN_CHARS = 4096  # SSM standard parameters hold at most 4 KB
# The token is the value of Tradowix's session cookie: RFC 6265 cookie-octets only.
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]+")
_COOKIE_PAIR = re.compile(r"(?i)(oauth_)?session[-_]token=")


# -- the secret ----------------------------------------------------------------------------
def hash_secret(secret: str, *, iterations: int = _HASH_ITERATIONS) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations)
    b64 = base64.urlsafe_b64encode
    return f"{_HASH_PREFIX}${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def secret_matches(presented: str, stored: str) -> bool:
    """Constant-time check against a `hash_secret` value, or a plain secret put by hand."""
    if stored.startswith(_HASH_PREFIX + "$"):
        try:
            _, iterations, salt, digest = stored.split("$")
            expected = base64.urlsafe_b64decode(digest)
            actual = hashlib.pbkdf2_hmac(
                "sha256", presented.encode(), base64.urlsafe_b64decode(salt), int(iterations)
            )
        except ValueError:
            return False
        return hmac.compare_digest(actual, expected)
    return hmac.compare_digest(presented.encode(), stored.encode())


class AdminSecretStore:
    """Reads the admin secret parameter (cached briefly: a rotated secret applies within a minute)."""

    def __init__(self, parameter_name: str, *, cache_seconds: float = 60.0, clock=time.monotonic):
        self.parameter_name = parameter_name
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._cached: tuple[float, str | None] | None = None
        self._lock = threading.Lock()

    def stored(self) -> str | None:
        with self._lock:
            if self._cached and self._clock() - self._cached[0] < self.cache_seconds:
                return self._cached[1]
            ssm = aws.client("ssm")
            with translate("the parameter store (SSM)"):
                try:
                    value = ssm.get_parameter(Name=self.parameter_name, WithDecryption=True)["Parameter"][
                        "Value"
                    ]
                except ssm.exceptions.ParameterNotFound:
                    value = None
            self._cached = (self._clock(), value)
            return value

    def fingerprint(self) -> str:
        """Changes when the secret is replaced, which ends every admin session."""
        return hashlib.sha256((self.stored() or "").encode()).hexdigest()[:16]

    def check(self, presented: str) -> bool:
        stored = self.stored()
        if not stored:
            raise Unauthorized(
                f"no admin secret is set: put one in the SSM parameter {self.parameter_name}",
                code="admin_not_configured",
            )
        return secret_matches(presented, stored)


# -- sessions and CSRF ---------------------------------------------------------------------
@dataclass(frozen=True)
class AdminSession:
    cookie: str
    csrf_token: str
    expires_at: int


class AdminSessions:
    def __init__(self, cookie_secret: str, secret_fingerprint: str, max_age: int):
        self._serializer = URLSafeTimedSerializer(cookie_secret, salt=_SALT)
        self._csrf_key = hashlib.sha256(b"csrf:" + cookie_secret.encode()).digest()
        self._fingerprint = secret_fingerprint
        self.max_age = max_age

    def _csrf(self, nonce: str) -> str:
        return hmac.new(self._csrf_key, nonce.encode(), hashlib.sha256).hexdigest()

    def issue(self) -> AdminSession:
        nonce = secrets.token_urlsafe(18)
        cookie = self._serializer.dumps({"adm": nonce, "fp": self._fingerprint})
        return AdminSession(cookie, self._csrf(nonce), int(time.time()) + self.max_age)

    def open(self, cookie: str | None) -> AdminSession:
        """The session behind a cookie, or Unauthorized."""
        if not cookie:
            raise Unauthorized("sign in to the admin panel first", code="admin_login_required")
        try:
            data, signed_at = self._serializer.loads(cookie, max_age=self.max_age, return_timestamp=True)
        except SignatureExpired:
            raise Unauthorized(
                "the admin session has expired; sign in again", code="admin_session_expired"
            ) from None
        except BadSignature:
            raise Unauthorized("invalid admin session; sign in again", code="admin_login_required") from None
        if not isinstance(data, dict) or not isinstance(data.get("adm"), str):
            raise Unauthorized("invalid admin session; sign in again", code="admin_login_required")
        if data.get("fp") != self._fingerprint:
            raise Unauthorized("the admin secret has changed; sign in again", code="admin_session_expired")
        expires = int(signed_at.timestamp()) + self.max_age
        return AdminSession(cookie, self._csrf(data["adm"]), expires)

    def require_csrf(self, session: AdminSession, presented: str | None) -> None:
        if not presented or not hmac.compare_digest(presented, session.csrf_token):
            raise Forbidden(
                f"this change needs the admin page's CSRF token in the {CSRF_HEADER} header; reload the page",
                code="csrf_token_invalid",
            )


# -- login throttling ----------------------------------------------------------------------
class LoginThrottle:
    """Per-address failure counter in the state table (pk="admin-login", sk=address)."""

    def __init__(self, state: StateStore, *, clock=time.time):
        self.state = state
        self._clock = clock

    def _table(self):
        return aws.resource("dynamodb").Table(self.state.table_name)

    def check(self, address: str) -> None:
        record = self.state.get("admin-login", address) or {}
        wait = float(record.get("locked_until", 0)) - self._clock()
        if wait > 0:
            seconds = math.ceil(wait)
            raise RateLimited(
                f"too many wrong admin secrets from your address; try again in {seconds} s",
                retry_after=seconds,
                code="admin_login_throttled",
            )

    def failed(self, address: str) -> int | None:
        """Counts a failure atomically; returns the lock in seconds it now imposes, if any."""
        now = self._clock()
        with translate("the state store (DynamoDB)"):
            item = self._table().update_item(
                Key={"pk": "admin-login", "sk": address},
                UpdateExpression="ADD failures :one SET expires_at = :exp",
                ExpressionAttributeValues={":one": 1, ":exp": int(now + FAILURE_MEMORY_SECONDS)},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        failures = int(item["failures"])
        if failures <= FREE_FAILURES:
            return None
        lock = min(2 ** min(failures - FREE_FAILURES, 20), MAX_LOCK_SECONDS)
        with translate("the state store (DynamoDB)"):
            self._table().update_item(
                Key={"pk": "admin-login", "sk": address},
                UpdateExpression="SET locked_until = :until",
                ExpressionAttributeValues={":until": int(now + lock)},
            )
        return lock

    def succeeded(self, address: str) -> None:
        with translate("the state store (DynamoDB)"):
            self._table().delete_item(Key={"pk": "admin-login", "sk": address})


# -- the Tradowix session token (write-only) -----------------------------------------------
def _iso(ts: dt.datetime | None) -> str | None:
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None


class SessionTokenStore:
    def __init__(self, parameter_name: str):
        self.parameter_name = parameter_name

    def status(self) -> dict:
        """Whether a token is set and when; never the value (not even encrypted)."""
        ssm = aws.client("ssm")
        with translate("the parameter store (SSM)"):
            found = ssm.describe_parameters(
                ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [self.parameter_name]}]
            )["Parameters"]
        if not found:
            return {"set": False, "set_at": None}
        return {"set": True, "set_at": _iso(found[0].get("LastModifiedDate"))}

    def replace(self, token: str | None) -> dict:
        if not isinstance(token, str):
            raise BadRequest("send the session token as a string", code="invalid_session_token")
        token = token.strip()
        if not token:
            raise BadRequest(
                "the session token is empty: paste the token from Tradowix", code="empty_session_token"
            )
        if len(token) > MAX_SESSION_TOKEN_CHARS:
            raise BadRequest(
                f"the session token is {len(token):,} characters long; a Tradowix token is far shorter "
                f"(at most {MAX_SESSION_TOKEN_CHARS:,}): check what you pasted",
                code="session_token_too_long",
            )
        if any(c.isspace() for c in token):
            raise BadRequest(
                "the session token cannot contain spaces or line breaks", code="invalid_session_token"
            )
        if _COOKIE_PAIR.match(token):
            raise BadRequest(
                "paste only the token's value, not the cookie's name (the part after 'session-token=')",
                code="invalid_session_token",
            )
        if not _COOKIE_VALUE.fullmatch(token):
            raise BadRequest(
                "the session token is a cookie value: letters, digits and signs such as - _ . ~ + / =, "
                "no quotes, commas, semicolons or backslashes; check what you pasted",
                code="invalid_session_token",
            )
        ssm = aws.client("ssm")
        with translate("the parameter store (SSM)"):
            ssm.put_parameter(
                Name=self.parameter_name,
                Value=token,
                Type="SecureString",
                Overwrite=True,
                Description="Tradowix session token (set from the admin panel)",
            )
        return self.status()


def upstream_overview(state: StateStore, *, clock=time.time) -> dict:
    status = state.upstream_status()
    if not status:
        return {"known": False, "status": None, "age_seconds": None}
    age = clock() - float(status.get("updated_at", 0))
    return {"known": True, "status": status, "age_seconds": round(age, 1)}
