from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import Request, Response


class JSONBody(Response):
    """orjson-encoded JSON: ~10x faster than the standard library on 10,080 bars."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2): W/"x" matches "x"."""
    wanted = etag.removeprefix("W/")
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == wanted:
            return True
    return False


def versioned_json(
    request: Request, version: str, body: Callable[[], bytes], cache_control: str = "no-cache"
) -> Response:
    """JSON whose ETag is `version`, a digest of what the answer is made of (the stored objects
    read, the selection), known before the body exists: a client that already has it gets a 304
    without the body being built, encoded or hashed. Weak (W/): the same data, not the same
    bytes (the answer's `timing` clock differs on every call)."""
    etag = f'W/"{version}"'
    headers = {"ETag": etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding, X-Api-Key, Cookie"}
    if _matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    return Response(body(), media_type="application/json", headers=headers)
