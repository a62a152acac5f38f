"""Browser session cookies: a signed, expiring token bound to the key id, never the raw key."""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ..errors import Unauthorized

COOKIE_NAME = "twk_session"
_SALT = "tradowix-partner-session"


class SessionSigner:
    def __init__(self, secret: str | None, max_age: int):
        # None: no secret exists yet, so no session was ever signed and every token is invalid.
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT) if secret else None
        self.max_age = max_age

    def issue(self, key_id: str) -> str:
        return self._serializer.dumps({"kid": key_id})

    def key_id(self, token: str) -> str:
        if self._serializer is None:
            raise Unauthorized("invalid session cookie; enter your API key again", code="invalid_session")
        try:
            data = self._serializer.loads(token, max_age=self.max_age)
        except SignatureExpired:
            raise Unauthorized(
                "your session has expired; enter your API key again", code="session_expired"
            ) from None
        except BadSignature:
            raise Unauthorized(
                "invalid session cookie; enter your API key again", code="invalid_session"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("kid"), str):
            raise Unauthorized("invalid session cookie; enter your API key again", code="invalid_session")
        return data["kid"]
