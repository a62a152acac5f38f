"""Our API Gateway WebSocket API on 127.0.0.1, driven by template.yaml.

Each connection, frame and close becomes the event API Gateway would send ($connect /
MESSAGE routes chosen by the route selection expression / $disconnect), handled by the same
handler in this process. The same port serves the @connections management API
(POST/GET/DELETE [/<stage>]/@connections/{id}) with API Gateway's answers: 410 GoneException
for unknown or closed ids, 413 PayloadTooLargeException over 128 KB.

@connections is as strict as AWS: only `/<stage>/@connections/{id}` of this API's stage (else
403 Forbidden), SigV4-signed for `execute-api` with the stack's credentials (unsigned: 403
MissingAuthenticationToken; wrong key, signature or a stale date: 403), the caller's role must
allow execute-api:ManageConnections on the connection (template.yaml, iam.py), and GetConnection answers
`connectedAt`, `identity.sourceIp`, `identity.userAgent`, `lastActiveAt` as boto3 parses them.

Local differences (docs/local-gateway-conformance.md): a refused $connect closes with code
4401 (401) after the handshake instead of an HTTP 401; frames are not limited to 32 KB
(messages are, to 128 KB).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import os
import secrets
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket

from .lambda_runtime import LocalFunction
from .template import WebSocketApi

MAX_MESSAGE_BYTES = 128 * 1024
IDLE_SECONDS = float(os.environ.get("TRADOWIX_WS_IDLE_SECONDS", 600))  # API Gateway: 10 minutes
MAX_LIFE_SECONDS = float(os.environ.get("TRADOWIX_WS_MAX_LIFE_SECONDS", 7200))  # API Gateway: 2 hours
CLOSE_CODES = {401: 4401, 403: 4403}  # a refused $connect, as the original server closed
SIGNATURE_MAX_SKEW_SECONDS = 5 * 60  # SigV4: a signed request is good for 5 minutes


def environment_credentials(access_key_id: str) -> str | None:
    """The secret of `access_key_id` when it is the one this stack hands its functions and
    collector (the process environment), else None."""
    if access_key_id and access_key_id == os.environ.get("AWS_ACCESS_KEY_ID"):
        return os.environ.get("AWS_SECRET_ACCESS_KEY")
    return None


def new_connection_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(11)).decode()  # 16 chars, like AWS's


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class _Connection:
    connection_id: str
    socket: WebSocket
    source_ip: str
    user_agent: str
    connected_at: float = field(default_factory=time.time)
    last_active: float = field(default_factory=time.time)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: bool = False


class WsGateway:
    """An ASGI app: WebSocket connections and the @connections API on one port."""

    def __init__(
        self,
        api: WebSocketApi,
        functions: dict[str, LocalFunction],
        *,
        idle_seconds: float = IDLE_SECONDS,
        max_life_seconds: float = MAX_LIFE_SECONDS,
        credentials: Callable[[str], str | None] = environment_credentials,
        region: str | None = None,
        iam=None,
    ):
        self.api = api
        self.iam = iam  # LocalIam: each role's credentials, and its ManageConnections permission
        self.functions = functions
        self.idle_seconds = idle_seconds
        self.max_life_seconds = max_life_seconds
        if iam is not None and credentials is environment_credentials:
            credentials = iam.secret_of  # every role's credentials, not only this process's
        self.credentials = credentials  # access key id -> secret key, for SigV4 checks
        self.region = region
        self.connections: dict[str, _Connection] = {}
        self._handling: set[asyncio.Task] = set()  # each connection's message handling (referenced)
        self._sweeper: asyncio.Task | None = None
        self._signing_keys: dict[tuple[str, str, str, str, str], bytes] = {}
        self._last_date: tuple[str, float] | None = None
        prefix = "$request.body."
        expr = api.route_selection_expression
        self._selection_path = expr[len(prefix) :].split(".") if expr.startswith(prefix) else []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self._management(scope, receive, send)
        elif scope["type"] == "lifespan":  # nothing to start or stop
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})

    # -- events -----------------------------------------------------------------------------
    def _context(self, route: str, event_type: str, conn_id: str, scope, connected_at: float) -> dict:
        now = time.time()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        client = scope.get("client") or ("127.0.0.1", 0)
        request_id = uuid.uuid4().hex[:16]
        return {
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": dt.datetime.fromtimestamp(now, dt.UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "messageDirection": "IN",
            "stage": self.api.stage,
            "connectedAt": int(connected_at * 1000),
            "requestTimeEpoch": int(now * 1000),
            "identity": {"sourceIp": client[0], "userAgent": headers.get("user-agent", "")},
            "requestId": request_id,
            "domainName": headers.get("host", "127.0.0.1"),
            "connectionId": conn_id,
            "apiId": "local",
        }

    def _connect_event(self, scope, conn_id: str, connected_at: float) -> dict:
        headers: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for k, v in scope.get("headers", []):
            name, value = k.decode("latin-1"), v.decode("latin-1")
            multi.setdefault(name, []).append(value)
            headers[name] = value
        event = {
            "headers": headers,
            "multiValueHeaders": multi,
            "requestContext": self._context("$connect", "CONNECT", conn_id, scope, connected_at),
            "isBase64Encoded": False,
        }
        query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            query[k] = v
            multi_query.setdefault(k, []).append(v)
        if query:
            event["queryStringParameters"] = query
            event["multiValueQueryStringParameters"] = multi_query
        return event

    def select_route(self, body: str) -> str:
        """API Gateway's route selection: the value at the expression's path in a JSON body,
        when it names a route; otherwise $default."""
        try:
            value = orjson.loads(body)
            for part in self._selection_path:
                value = value[part] if isinstance(value, dict) else None
        except (orjson.JSONDecodeError, KeyError):
            return "$default"
        if isinstance(value, str) and value in self.api.routes and not value.startswith("$"):
            return value
        return "$default"

    async def _invoke(self, route: str, event: dict) -> dict | None:
        function = self.functions[self.api.routes[route]]
        return await run_in_threadpool(function.invoke, event)

    # -- connections ------------------------------------------------------------------------
    async def _websocket(self, scope, receive, send) -> None:
        socket = WebSocket(scope, receive, send)
        conn_id, connected_at = new_connection_id(), time.time()
        status, code = 200, ""
        if "$connect" in self.api.routes:
            try:
                result = await self._invoke("$connect", self._connect_event(scope, conn_id, connected_at))
                status = int((result or {}).get("statusCode", 200)) if isinstance(result, dict) else 200
                code = _error_code(result)
            except Exception:  # an unhandled $connect error refuses the handshake on AWS too
                traceback.print_exc()
                status = 500
        if status >= 300:
            await socket.accept()
            # The reason carries the answer's short code (e.g. key_disabled), as the body of
            # API Gateway's refused handshake does.
            await socket.close(code=CLOSE_CODES.get(status, 1011), reason=code)
            return
        headers = dict(socket.headers)
        conn = _Connection(
            conn_id, socket, (scope.get("client") or ("127.0.0.1", 0))[0], headers.get("user-agent", "")
        )
        conn.connected_at = connected_at
        await socket.accept()
        self.connections[conn_id] = conn
        self._ensure_sweeper()
        # Frames are read as they arrive and handed to the handler in order by a task of their
        # own. Reading on while a handler runs keeps pings answered (uvicorn reads the socket no
        # further until the app takes the message), as API Gateway answers them whatever its
        # integrations do: a burst of slow messages starved the client's keepalive (1011).
        received: asyncio.Queue[str | dict] = asyncio.Queue()
        handling = asyncio.create_task(self._handle_in_order(conn, scope, received))
        self._handling.add(handling)
        handling.add_done_callback(self._handling.discard)
        close_code, reason = 1000, "Client closed"
        try:
            while True:
                message = await socket.receive()
                if message["type"] == "websocket.disconnect":
                    close_code = message.get("code", 1005)
                    break
                body = message.get("text")
                if body is None:
                    body = (message.get("bytes") or b"").decode("utf-8", "replace")
                if len(body.encode()) > MAX_MESSAGE_BYTES:
                    close_code, reason = 1009, "Message too big"
                    await self._close(conn, 1009, "Message too big")
                    break
                conn.last_active = time.time()
                received.put_nowait(body)
        finally:
            conn.closed = True
            self.connections.pop(conn_id, None)
            received.put_nowait(
                {
                    "headers": {"Host": dict(socket.headers).get("host", "")},
                    "requestContext": {
                        **self._context("$disconnect", "DISCONNECT", conn_id, scope, connected_at),
                        "disconnectStatusCode": close_code,
                        "disconnectReason": reason,
                    },
                    "isBase64Encoded": False,
                }
            )
            await asyncio.shield(handling)  # finishes even if this connection's task is cancelled

    async def _handle_in_order(self, conn: _Connection, scope, received: asyncio.Queue) -> None:
        """The messages received before the close, in order, then $disconnect (so a subscribe
        still queued cannot outlive the connection's cleanup)."""
        while isinstance(item := await received.get(), str):
            await self._message(conn, scope, item)
        if "$disconnect" in self.api.routes:
            try:
                await self._invoke("$disconnect", item)
            except Exception:  # noqa: BLE001 - $disconnect is best-effort on AWS too
                traceback.print_exc()

    async def _message(self, conn: _Connection, scope, body: str) -> None:
        route = self.select_route(body)
        context = self._context(route, "MESSAGE", conn.connection_id, scope, conn.connected_at)
        context["messageId"] = uuid.uuid4().hex[:16]
        if route not in self.api.routes:  # no $default route: API Gateway answers Forbidden
            await self._send(conn, orjson.dumps({"message": "Forbidden", "connectionId": conn.connection_id}))
            return
        event = {"requestContext": context, "body": body, "isBase64Encoded": False}
        try:
            await self._invoke(route, event)
        except Exception:  # API Gateway tells the client, the connection stays
            traceback.print_exc()
            await self._send(
                conn,
                orjson.dumps(
                    {
                        "message": "Internal server error",
                        "connectionId": conn.connection_id,
                        "requestId": context["requestId"],
                    }
                ),
            )

    async def _send(self, conn: _Connection, data: bytes) -> bool:
        async with conn.lock:
            if conn.closed:
                return False
            try:
                try:
                    await conn.socket.send_text(data.decode("utf-8"))
                except UnicodeDecodeError:
                    await conn.socket.send_bytes(data)
            except Exception:  # noqa: BLE001 - the client went away mid-send: it is gone
                conn.closed = True
                return False
        conn.last_active = time.time()
        return True

    async def _close(self, conn: _Connection, code: int, reason: str = "") -> None:
        async with conn.lock:
            if conn.closed:
                return
            conn.closed = True
            with contextlib.suppress(Exception):
                await conn.socket.close(code=code, reason=reason)

    def _ensure_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        """API Gateway's limits: 10 minutes idle, 2 hours per connection (code 1001)."""
        while self.connections:
            await asyncio.sleep(min(1.0, self.idle_seconds / 4))
            now = time.time()
            for conn in list(self.connections.values()):
                if now - conn.last_active > self.idle_seconds:
                    await self._close(conn, 1001, "Going away: idle timeout")
                elif now - conn.connected_at > self.max_life_seconds:
                    await self._close(conn, 1001, "Going away: maximum connection duration")

    # -- @connections -------------------------------------------------------------------------
    async def _management(self, scope, receive, send) -> None:
        parts = scope["path"].strip("/").split("/")
        if len(parts) != 3 or parts[0] != self.api.stage or parts[1] != "@connections":
            # API Gateway: another stage, or no stage, is not this API's management endpoint.
            return await _respond(send, 403, {"message": "Forbidden"}, "ForbiddenException")
        body = await _read_body(receive)
        refusal = self._signature_problem(scope, body)
        if refusal is not None:
            status, error_type, message = refusal
            return await _respond(send, status, {"message": message}, error_type)
        refused = self._not_permitted(scope, body)
        if refused is not None:
            return await _send_refusal(send, refused)
        conn = self.connections.get(parts[2])
        method = scope["method"]
        if method == "POST":
            if len(body) > MAX_MESSAGE_BYTES:
                return await _respond(
                    send, 413, {"message": "Request entity too large"}, "PayloadTooLargeException"
                )
            if conn is None or not await self._send(conn, body):
                return await _respond(send, 410, {"message": None}, "GoneException")
            return await _respond(send, 200, None)
        if conn is None or conn.closed:
            return await _respond(send, 410, {"message": None}, "GoneException")
        if method == "GET":
            # The wire names of GetConnection (botocore's model): lower camel case, ISO 8601 times.
            return await _respond(
                send,
                200,
                {
                    "connectedAt": _iso(conn.connected_at),
                    "identity": {"sourceIp": conn.source_ip, "userAgent": conn.user_agent},
                    "lastActiveAt": _iso(conn.last_active),
                },
            )
        if method == "DELETE":
            await self._close(conn, 1000, "")
            return await _respond(send, 204, None)
        return await _respond(send, 403, {"message": "Forbidden"}, "ForbiddenException")

    def _not_permitted(self, scope, body: bytes):
        """The refusal when the (validly signed) caller's role may not ManageConnections on this
        connection, as template.yaml writes it (iam.py); None when it may."""
        if self.iam is None:
            return None
        from .iam import SignedRequest

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        request = SignedRequest(
            scope["method"], f"http://{headers.get('host', 'localhost')}{raw_path}", headers, body
        )
        request.service = "execute-api"
        return self.iam.check_policy(request)

    def _signature_problem(self, scope, body: bytes) -> tuple[int, str, str] | None:
        """None when the request carries a valid SigV4 signature for execute-api; else the 403
        that API Gateway answers (status, x-amzn-ErrorType, message)."""
        headers: dict[str, list[str]] = {}
        for k, v in scope.get("headers", []):
            headers.setdefault(k.decode("latin-1").lower(), []).append(v.decode("latin-1"))
        auth = (headers.get("authorization") or [""])[0]
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return 403, "MissingAuthenticationTokenException", "Missing Authentication Token"
        fields = {}
        for part in auth[len("AWS4-HMAC-SHA256 ") :].split(","):
            name, _, value = part.strip().partition("=")
            fields[name] = value
        try:
            access_key, day, region, service, terminal = fields["Credential"].split("/")
            signed_names = fields["SignedHeaders"].split(";")
            signature = fields["Signature"]
        except (KeyError, ValueError):
            return (
                403,
                "IncompleteSignatureException",
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'.",
            )
        secret = self.credentials(access_key)
        if secret is None:
            return (
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        amz_date = (headers.get("x-amz-date") or [""])[0]
        try:
            signed_at = self._signed_at(amz_date)
        except ValueError:
            return (
                403,
                "IncompleteSignatureException",
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
            )
        if abs(time.time() - signed_at) > SIGNATURE_MAX_SKEW_SECONDS:
            return (
                403,
                "InvalidSignatureException",
                "Signature expired: the request's X-Amz-Date is more than 5 minutes from the server's time.",
            )
        expected_region = self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if (
            service != "execute-api"
            or terminal != "aws4_request"
            or day != amz_date[:8]
            or (expected_region and region != expected_region)
        ):
            return (
                403,
                "InvalidSignatureException",
                "Credential should be scoped to a valid region and the service execute-api.",
            )
        if "host" not in signed_names or any(name not in headers for name in signed_names):
            return (
                403,
                "InvalidSignatureException",
                "The request signature does not sign the host header, or signs a header that is missing.",
            )
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = "&".join(sorted(scope.get("query_string", b"").decode("latin-1").split("&"))).strip("&")
        payload_hash = (headers.get("x-amz-content-sha256") or [hashlib.sha256(body).hexdigest()])[0]
        canonical = "\n".join(
            [
                scope["method"],
                quote(raw_path, safe="/~"),  # encoded once more, as SigV4 wants for execute-api
                query,
                *(f"{name}:{','.join(' '.join(v.split()) for v in headers[name])}" for name in signed_names),
                "",
                ";".join(signed_names),
                payload_hash,
            ]
        )
        scope_text = f"{day}/{region}/{service}/{terminal}"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", amz_date, scope_text, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = self._signing_key(secret, day, region, service, terminal)
        if not hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), signature):
            return (
                403,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. Check your AWS "
                "Secret Access Key and signing method. Consult the service documentation for details.",
            )
        return None

    def _signing_key(self, secret: str, day: str, region: str, service: str, terminal: str) -> bytes:
        """SigV4's derived key of (secret, day, region, service), derived once and kept, as AWS
        derives and caches it: the same check, four HMACs fewer per request."""
        scope = (secret, day, region, service, terminal)
        key = self._signing_keys.get(scope)
        if key is None:
            key = ("AWS4" + secret).encode()
            for part in (day, region, service, terminal):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            if len(self._signing_keys) >= 64:  # a few credentials per day: bounded all the same
                self._signing_keys.clear()
            self._signing_keys[scope] = key
        return key

    def _signed_at(self, amz_date: str) -> float:
        """The X-Amz-Date as a timestamp (ValueError if malformed); the last one parsed is kept
        (a burst of posts is signed within the same second)."""
        last = self._last_date
        if last is not None and last[0] == amz_date:
            return last[1]
        signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC).timestamp()
        self._last_date = (amz_date, signed_at)
        return signed_at


def _error_code(result) -> str:
    """The short `error` code of a $connect answer's JSON body, or ""."""
    try:
        body = orjson.loads((result or {}).get("body") or b"{}")
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return ""
    code = body.get("error") if isinstance(body, dict) else None
    return code[:60] if isinstance(code, str) else ""


async def _send_refusal(send, refusal) -> None:
    headers = [(k.lower().encode(), v.encode()) for k, v in refusal.headers]
    headers.append((b"content-length", str(len(refusal.body)).encode()))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": refusal.body})


async def _read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send, status: int, body: dict | None, error_type: str | None = None) -> None:
    payload = b"" if body is None else orjson.dumps(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if error_type:
        headers.append((b"x-amzn-errortype", error_type.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
