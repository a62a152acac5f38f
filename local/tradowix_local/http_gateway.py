"""Our API Gateway HTTP API (payload format 2.0) on 127.0.0.1: each request becomes the event
AWS would send, goes to the same handler the template names, and its answer goes back."""

from __future__ import annotations

import base64
import datetime as dt
import time
import uuid
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .lambda_runtime import LocalFunction
from .template import Route

_TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml")
# API Gateway HTTP APIs refuse a request body over 10 MB with 413 before any function runs.
MAX_BODY_BYTES = 10 * 1024 * 1024
_TOO_LARGE = {"message": "Request Entity Too Large"}


class BodyTooLarge(Exception):
    pass


async def read_body(scope, receive, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refused (BodyTooLarge) as soon as it is known to exceed `limit`: from
    Content-Length before reading anything, else (chunked) once the bytes read pass it, so a
    client can never make the gateway hold more than `limit` of its body in memory."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                if int(value) > limit:
                    raise BodyTooLarge
            except ValueError:
                pass  # the server refuses a malformed Content-Length before we get here
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def build_event(request: Request, body: bytes, route: Route, path_params: dict) -> dict:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        if name == "cookie":
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    # API Gateway tells the function the client's scheme (https there); here it is plain http.
    headers.setdefault("x-forwarded-proto", request.url.scheme)
    cookie_header = request.headers.get("cookie")
    query: dict[str, str] = {}
    for k, v in parse_qsl(request.url.query, keep_blank_values=True):
        query[k] = f"{query[k]},{v}" if k in query else v
    now = time.time()
    event = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": request.url.path,
        "rawQueryString": request.url.query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": request.headers.get("host", "127.0.0.1"),
            "domainPrefix": request.headers.get("host", "127.0.0.1").split(".")[0],
            "http": {
                "method": request.method,
                "path": request.url.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.client.host if request.client else "127.0.0.1",
                "userAgent": request.headers.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": route.route_key,
            "stage": "$default",
            "time": dt.datetime.fromtimestamp(now, dt.UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookie_header:
        event["cookies"] = [c.strip() for c in cookie_header.split(";") if c.strip()]
    if query:
        event["queryStringParameters"] = query
    if path_params:
        event["pathParameters"] = path_params
    if body:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(_TEXT_TYPES) or not content_type:
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return event


def to_response(result: dict) -> Response:
    body = result.get("body") or ""
    content = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    response = Response(content, status_code=int(result.get("statusCode", 200)))
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = str(value)
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            response.headers.append(name, str(value))
    for cookie in result.get("cookies") or []:
        response.headers.append("set-cookie", cookie)
    return response


class HttpGateway:
    """An ASGI app. `routes` come from template.yaml; `functions` are the loaded handlers."""

    def __init__(self, routes: list[Route], functions: dict[str, LocalFunction], fallback=None):
        self.routes = [(r, r.pattern()) for r in routes]
        self.functions = functions
        self.fallback = fallback  # ASGI app for paths no route claims (e.g. static files)

    def match(self, method: str, path: str):
        for route, pattern in self.routes:
            if route.method in ("ANY", method):
                m = pattern.match(path)
                if m:
                    return route, m.groupdict()
        return None, None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return
        request = Request(scope, receive)
        route, params = self.match(request.method, request.url.path)
        if route is None:
            if self.fallback is not None:
                return await self.fallback(scope, receive, send)
            return await JSONResponse({"message": "Not Found"}, status_code=404)(scope, receive, send)
        try:
            body = await read_body(scope, receive)
        except BodyTooLarge:  # the rest is never read; the server closes the connection after this answer
            response = JSONResponse(_TOO_LARGE, status_code=413, headers={"Connection": "close"})
            return await response(scope, receive, send)
        event = build_event(request, body, route, params)
        try:
            result = await run_in_threadpool(self.functions[route.function].invoke, event)
        except Exception:  # an unhandled handler error is a 500 on API Gateway too
            import traceback

            traceback.print_exc()
            result = {"statusCode": 500, "body": '{"message":"Internal Server Error"}'}
        await to_response(result)(scope, receive, send)
