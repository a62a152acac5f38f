from __future__ import annotations

import hashlib
from typing import Any

import orjson
from fastapi import Request, Response


class JSONBody(Response):
    """orjson-encoded JSON: ~10x faster than the standard library on 10,080 bars."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def conditional_json(
    request: Request, content: Any, cache_control: str = "no-cache", volatile: str | None = None
) -> Response:
    """JSON with an ETag; answers 304 when the client already has this answer.

    `volatile` names a top-level field that differs on every call (the candles answer's
    `timing` clock): it is left out of the ETag, else no request would ever match. The
    ETag is then weak (same data, not the same bytes). The body is encoded once.
    """
    if volatile is None:
        body = stable = orjson.dumps(content)
        weak = ""
    else:
        rest = {k: v for k, v in content.items() if k != volatile}
        stable = orjson.dumps(rest)
        tail = b'"' + volatile.encode() + b'":' + orjson.dumps(content[volatile]) + b"}"
        body = stable[:-1] + (b"," if rest else b"") + tail
        weak = "W/"
    etag = weak + '"' + hashlib.blake2b(stable, digest_size=16).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding, X-Api-Key, Cookie"}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
