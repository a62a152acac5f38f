"""The owner's Tradowix session token: the only upstream credential. Never logged or returned.

Where it comes from, first match wins:
  1. --token on the command line
  2. TRADOWIX_SESSION_TOKEN (overrides stored ones, as in the original)
  3. on AWS: the SSM SecureString parameter named by TRADOWIX_TOKEN_PARAMETER
  4. locally: <data dir>/session-token, which must be readable by its owner only (0600)
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import DomainError
from ..server.redact import register_secret

TOKEN_FILE = "session-token"
TOKEN_CACHE_SECONDS = 5  # Powertools Parameters' cache: links re-reading at once cost one SSM call


class TokenError(DomainError):
    status = 500
    code = "session_token"


def token_file(data_dir: Path) -> Path:
    return Path(data_dir) / TOKEN_FILE


def save_token_file(data_dir: Path, token: str) -> Path:
    """Write the token so only the owner can read it (created 0600, never world-readable)."""
    path = token_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token.strip() + "\n")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path


def read_token_file(path: Path) -> str | None:
    if not path.exists():
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise TokenError(
            f"{path} is readable by other users (mode {mode:o}); run: chmod 600 {path}",
            code="token_file_insecure",
        )
    return path.read_text().strip() or None


def load_token(explicit: str | None = None, *, data_dir: Path | None = None) -> str | None:
    """The session token, registered as a secret: its value is scrubbed wherever this process
    logs or stores outside text."""
    token = _find_token(explicit, data_dir)
    register_secret(token)
    return token


def _find_token(explicit: str | None, data_dir: Path | None) -> str | None:
    if explicit:
        return explicit.strip()
    if os.environ.get("TRADOWIX_SESSION_TOKEN"):
        return os.environ["TRADOWIX_SESSION_TOKEN"].strip()
    parameter = os.environ.get("TRADOWIX_TOKEN_PARAMETER")
    if parameter:
        from ..server import aws

        try:  # None: not stored yet (a fresh deployment): the collector waits for it
            value = aws.parameter(parameter, max_age=TOKEN_CACHE_SECONDS)
        except Exception as exc:  # noqa: BLE001 - one clear line, never the value
            raise TokenError(f"cannot read SSM parameter {parameter}: {type(exc).__name__}") from None
        return (value or "").strip() or None
    if data_dir is not None:
        return read_token_file(token_file(data_dir))
    return None
