"""Unit-test helpers: the partner API called the way API Gateway calls it (payload 2.0 events),
a seeded in-process moto, and a fingerprint of everything stored (to prove nothing was written)."""

from __future__ import annotations

import asyncio
import base64
import copy
import gzip
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

EVENTS = Path(__file__).parent / "events"
# 2024-03-10 00:00:00 UTC: a fixed day boundary, so day splits are predictable.
T0 = 1_710_028_800


def synthetic_bars(start: int, count: int, step: int = 60) -> list[tuple]:
    """Simple, valid, distinct 1m bars: (time, open, high, low, close)."""
    out = []
    for i in range(count):
        o = 100.0 + (i % 97) * 0.25
        c = o + ((i % 7) - 3) * 0.05
        out.append((start + i * step, o, max(o, c) + 0.1, min(o, c) - 0.1, round(c, 4)))
    return out


@dataclass
class LambdaContext:
    function_name: str = "ApiFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ApiFunction"
    aws_request_id: str = "req"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@dataclass
class GatewayAnswer:
    """What API Gateway would return to the client, decoded."""

    status: int
    headers: dict
    cookies: list[str]
    body: bytes
    raw: dict

    def json(self):
        return json.loads(self.body)


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def invoke(
    template: str,
    *,
    path: str | None = None,
    method: str | None = None,
    query: dict | None = None,
    raw_query: str | None = None,
    headers: dict | None = None,
    cookies: list[str] | None = None,
    body: str | bytes | None = None,
    drop_body: bool = False,
) -> GatewayAnswer:
    """Fill an event template from tests/unit/events and pass it to the function API Gateway
    routes it to (template.yaml): the admin API's for /api/admin/*, else the partner API's."""
    handler = function_for(path or "")

    event = copy.deepcopy(load_event(template))
    if path is not None:
        event["rawPath"] = path
        event["requestContext"]["http"]["path"] = path
        event["pathParameters"] = {"proxy": path.removeprefix("/api/")}
    if method is not None:
        event["requestContext"]["http"]["method"] = method
    if query is not None or raw_query is not None:
        event["rawQueryString"] = raw_query if raw_query is not None else urlencode(query)
        if query:
            event["queryStringParameters"] = {k: str(v) for k, v in query.items()}
        else:
            event.pop("queryStringParameters", None)
    if headers:
        event["headers"].update({k.lower(): v for k, v in headers.items()})
    if cookies is not None:
        event["cookies"] = cookies
    if drop_body:
        event.pop("body", None)
    elif body is not None:
        if isinstance(body, bytes):
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"], event["isBase64Encoded"] = body, False
    event["requestContext"]["requestId"] = uuid.uuid4().hex
    # Lambda's runtime thread always has an event loop (Mangum needs one); a test before this
    # one may have run asyncio.run(), which leaves the thread without one.
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    result = handler(event, LambdaContext())
    raw_body = result.get("body") or ""
    data = base64.b64decode(raw_body) if result.get("isBase64Encoded") else raw_body.encode()
    return GatewayAnswer(
        status=result["statusCode"],
        headers={k.lower(): v for k, v in (result.get("headers") or {}).items()},
        cookies=result.get("cookies") or [],
        body=data,
        raw=result,
    )


def function_for(path: str):
    """The handler API Gateway routes `path` to: /api/admin/* is the admin function's."""
    if path.startswith("/api/admin/"):
        from partner_api.admin_app import handler
    else:
        from partner_api.app import handler
    return handler


def get(path: str, query: dict | None = None, headers: dict | None = None, **kw) -> GatewayAnswer:
    return invoke("candles_get.json", path=path, query=query or {}, headers=headers, **kw)


def storage_fingerprint(names: dict) -> dict:
    """Every stored object (key -> ETag) and every table item: equal fingerprints, nothing written."""
    import boto3

    s3 = boto3.client("s3")
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=names["CandlesBucket"]):
        for obj in page.get("Contents", []):
            objects[obj["Key"]] = obj["ETag"]
    tables = {}
    dynamo = boto3.client("dynamodb")
    for logical in ("KeysTable", "StateTable"):
        items = dynamo.scan(TableName=names[logical], ConsistentRead=True)["Items"]
        # per-key rate-limit counters change with every keyed request: bookkeeping, not data
        items = [i for i in items if not i.get("pk", {}).get("S", "").startswith("ratelimit#")]
        tables[logical] = sorted(json.dumps(i, sort_keys=True) for i in items)
    return {"objects": objects, "tables": tables}


def gunzip_if_needed(answer: GatewayAnswer) -> bytes:
    if answer.headers.get("content-encoding") == "gzip":
        return gzip.decompress(answer.body)
    return answer.body


def run_async(coroutine):
    """Like asyncio.run, but leaves the thread's current event loop alone (Mangum, used by
    other tests in this process, needs the main thread's)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()
