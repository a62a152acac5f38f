"""The owner's admin panel: secret check, sessions, CSRF, login throttling, the session token.

- The admin secret lives in an SSM SecureString whose name the template passes in
  (ADMIN_SECRET_PARAMETER). Its value is either a hash made by `hash_secret` (what the
  local stack stores) or the secret itself (what an owner may put by hand); both verify.
- An admin session is a signed, expiring HttpOnly cookie (its own name and salt, so a
  partner cookie can never pass as one) and a record in the state table: logout deletes the
  record, which ends the session wherever its cookie was saved. The cookie carries a random
  nonce; the CSRF token is an HMAC of that nonce, sent back by the page in a header on every write.
- Login attempts are counted per client address in the state table before the secret is
  checked; after a few wrong ones, every attempt from that address is refused with 429 +
  Retry-After for a time that doubles. `tradowix admin unlock` lifts it.
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
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ..errors import BadRequest, Forbidden, RateLimited, Unauthorized
from . import aws
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
    """Reads the admin secret parameter (cached by Powertools Parameters: a rotated secret applies
    within a minute)."""

    def __init__(self, parameter_name: str, *, cache_seconds: int = 60):
        self.parameter_name = parameter_name
        self.cache_seconds = cache_seconds

    def stored(self) -> str | None:
        with translate("the parameter store (SSM)"):
            return aws.parameter(self.parameter_name, max_age=self.cache_seconds)

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
    session_id: str = ""  # a hash of the cookie's nonce: the server-side record's key


def _session_id(nonce: str) -> str:
    # The record holds a hash, so the state table (and the local snapshot) holds no live session.
    return hashlib.sha256(b"admin-session:" + nonce.encode()).hexdigest()[:32]


class AdminSessions:
    """Signed cookies whose sessions also live in the state table (pk="admin-session",
    sk=hash of the nonce, expiring with the cookie): logging out deletes the record, and a
    cookie saved before the logout no longer opens anything."""

    def __init__(
        self,
        cookie_secret: str,
        secret_fingerprint: str,
        max_age: int,
        state: StateStore | None = None,
        *,
        clock=time.time,
    ):
        self._serializer = URLSafeTimedSerializer(cookie_secret, salt=_SALT)
        self._csrf_key = hashlib.sha256(b"csrf:" + cookie_secret.encode()).digest()
        self._fingerprint = secret_fingerprint
        self.max_age = max_age
        self._state = state
        self._clock = clock

    def _table(self):
        return aws.table(self._state.table_name)

    def _csrf(self, nonce: str) -> str:
        return hmac.new(self._csrf_key, nonce.encode(), hashlib.sha256).hexdigest()

    def issue(self) -> AdminSession:
        nonce = secrets.token_urlsafe(18)
        expires = int(self._clock()) + self.max_age
        if self._state is not None:
            self._state.put("admin-session", _session_id(nonce), {"expires_at": expires})
        cookie = self._serializer.dumps({"adm": nonce, "fp": self._fingerprint})
        return AdminSession(cookie, self._csrf(nonce), expires, _session_id(nonce))

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
        session_id = _session_id(data["adm"])
        if self._state is not None:
            record = self._state.get("admin-session", session_id)
            if record is None or float(record.get("expires_at", 0)) <= self._clock():
                raise Unauthorized("this admin session has ended; sign in again", code="admin_session_ended")
        expires = int(signed_at.timestamp()) + self.max_age
        return AdminSession(cookie, self._csrf(data["adm"]), expires, session_id)

    def revoke(self, session: AdminSession) -> None:
        """End a session for good (logout): its cookie is refused from now on, wherever it was saved."""
        if self._state is not None and session.session_id:
            with translate("the state store (DynamoDB)"):
                self._table().delete_item(Key={"pk": "admin-session", "sk": session.session_id})

    def require_csrf(self, session: AdminSession, presented: str | None) -> None:
        if not presented or not hmac.compare_digest(presented, session.csrf_token):
            raise Forbidden(
                f"this change needs the admin page's CSRF token in the {CSRF_HEADER} header; reload the page",
                code="csrf_token_invalid",
            )


# -- login throttling ----------------------------------------------------------------------
def lock_seconds(attempts: int) -> int:
    """How long an address waits after its `attempts`-th attempt in a row without success:
    nothing for the first FREE_FAILURES - 1, then 2 s, doubling up to MAX_LOCK_SECONDS."""
    if attempts < FREE_FAILURES:
        return 0
    return min(2 ** min(attempts - FREE_FAILURES + 1, 20), MAX_LOCK_SECONDS)


class LoginThrottle:
    """Per-address attempt counter in the state table (pk="admin-login", sk=address).

    An attempt is counted *before* the secret is checked, by a compare-and-set on the count: of
    many simultaneous attempts, exactly FREE_FAILURES get a secret check, and the one that makes
    the count FREE_FAILURES also locks the address. A success forgets the address. The lock is
    per address (a stranger cannot lock the owner out from elsewhere); on the machine,
    `tradowix admin unlock` ends every lock at once (the owner's way out when the attacker
    shares the owner's address, as every local user does on 127.0.0.1)."""

    KEY = "admin-login"
    MAX_CLAIM_TRIES = 50  # compare-and-set retries under contention; then the attempt waits

    def __init__(self, state: StateStore, *, clock=time.time):
        self.state = state
        self._clock = clock

    def _table(self):
        return aws.table(self.state.table_name)

    def _refuse(self, seconds: float, message: str = "too many wrong admin secrets from your address"):
        wait = max(1, math.ceil(seconds))
        raise RateLimited(f"{message}; try again in {wait} s", retry_after=wait, code="admin_login_throttled")

    def check(self, address: str) -> None:
        """Raise RateLimited while the address is locked (counts nothing)."""
        record = self.state.get(self.KEY, address) or {}
        wait = float(record.get("locked_until", 0)) - self._clock()
        if wait > 0:
            self._refuse(wait)

    def claim(self, address: str) -> int:
        """Count one attempt before its secret is checked. Returns the lock (seconds) the attempt
        imposes if its secret turns out wrong (0: none); raises RateLimited while locked."""
        table = self._table()
        for _ in range(self.MAX_CLAIM_TRIES):
            record = self.state.get(self.KEY, address) or {}
            now = self._clock()
            wait = float(record.get("locked_until", 0)) - now
            if wait > 0:
                self._refuse(wait)
            previous = int(record.get("attempts", 0))
            attempts = previous + 1
            lock = lock_seconds(attempts)
            condition = "attempts = :previous" if record else "attribute_not_exists(pk)"
            values = {
                ":attempts": attempts,
                ":until": int(now + lock) if lock else 0,
                ":expires": int(now + FAILURE_MEMORY_SECONDS),
            }
            if record:
                values[":previous"] = previous
            with translate("the state store (DynamoDB)"):
                try:
                    table.update_item(
                        Key={"pk": self.KEY, "sk": address},
                        UpdateExpression="SET attempts = :attempts, locked_until = :until, expires_at = :expires",
                        ConditionExpression=condition,
                        ExpressionAttributeValues=values,
                    )
                except table.meta.client.exceptions.ConditionalCheckFailedException:
                    continue  # another attempt was counted first: count again on top of it
            return lock
        self._refuse(1, "too many simultaneous admin sign-ins from your address")
        return 0  # unreachable

    def succeeded(self, address: str) -> None:
        with translate("the state store (DynamoDB)"):
            self._table().delete_item(Key={"pk": self.KEY, "sk": address})

    def unlock(self, address: str | None = None) -> int:
        """Forget the attempts of `address`, or of every address; returns how many were locked or counted."""
        from boto3.dynamodb.conditions import Key

        table = self._table()
        condition = Key("pk").eq(self.KEY) & Key("sk").eq(address) if address else Key("pk").eq(self.KEY)
        forgotten = 0
        with translate("the state store (DynamoDB)"):
            kwargs = {"KeyConditionExpression": condition, "ConsistentRead": True}
            while True:
                page = table.query(**kwargs)
                for item in page.get("Items", []):
                    table.delete_item(Key={"pk": self.KEY, "sk": item["sk"]})
                    forgotten += 1
                if "LastEvaluatedKey" not in page:
                    return forgotten
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


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
