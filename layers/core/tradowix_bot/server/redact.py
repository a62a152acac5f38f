"""Scrub secrets from anything that is about to be logged or stored.

Two nets: patterns for secrets in their usual places (`twk_…` keys, `token=…`, JSON fields),
and the literal value of every secret this process holds (`register_secret`: the Tradowix
session token, AWS credentials), wherever it appears — a bare token in an upstream's error
text has no pattern to match.
"""

from __future__ import annotations

import os
import re
import threading

MASK = "***"
_MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words

_PATTERNS = [
    (re.compile(r"twk_[A-Za-z0-9_\-]+"), "twk_***"),
    (
        re.compile(
            r"((?:api_key|token|session-token|twk_session|twk_admin|session|secret)=)[^&\s;\"']+", re.I
        ),
        r"\1***",
    ),
    (
        re.compile(r'("(?:api_key|x-api-key|token|cookie|authorization|secret)"\s*:\s*")[^"]*(")', re.I),
        r"\1***\2",
    ),
]

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Scrub this literal value from everything redacted from now on."""
    if value and len(value.strip()) >= _MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value.strip())


def register_environment_secrets() -> None:
    """The credentials a process may hold in its environment."""
    for name in (
        "TRADOWIX_SESSION_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "TRADOWIX_ADMIN_SECRET",
    ):
        value = os.environ.get(name)
        if value and (name.startswith("TRADOWIX") or len(value) >= 16):  # not moto's "testing"
            register_secret(value)


def redact(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)  # a longer secret may contain a shorter one
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
