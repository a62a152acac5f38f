"""Scrub secrets from anything that is about to be logged."""

from __future__ import annotations

import re

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


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
