"""The live WebSocket API's routes ($connect, $disconnect, subscribe, unsubscribe, ping,
$default): parse the API Gateway event, call the domain (tradowix_bot.server.live_socket), answer."""

from __future__ import annotations

import orjson
from tradowix_bot.errors import DomainError
from tradowix_bot.server.invocation import invocation
from tradowix_bot.server.logs import get_logger
from tradowix_bot.server.metrics import recorder

from . import context

logger = get_logger("tradowix-ws")
metrics = recorder("ws")
context.services.settings()  # validated at init: a missing table or endpoint stops here, named


def _raw_key(event: dict) -> str | None:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    query = event.get("queryStringParameters") or {}
    return headers.get("x-api-key") or query.get("api_key") or None


def _session_token(event: dict) -> str | None:
    return (event.get("queryStringParameters") or {}).get("session") or None


def _refuse(exc: DomainError) -> dict:
    # A non-2xx answer to $connect makes API Gateway refuse the handshake with that status.
    return {
        "statusCode": exc.status,
        "body": orjson.dumps({"error": exc.code, "message": exc.message}).decode(),
    }


def handler(event: dict, lambda_context) -> dict:
    ctx = event["requestContext"]
    route, connection_id = ctx["routeKey"], ctx["connectionId"]
    # ids on every line, AWS calls budgeted within the invocation's time, metrics flushed
    with invocation(event, lambda_context, metrics, connection_id=connection_id):
        return _route(event, route, connection_id)


def _route(event: dict, route: str, connection_id: str) -> dict:
    # One line per connect/disconnect; per message only at DEBUG (INFO would log every frame).
    (logger.info if route.startswith("$") else logger.debug)("ws", extra={"route": route})
    live = context.services.live_socket()
    if route == "$connect":
        try:
            live.connect(connection_id, _raw_key(event), _session_token(event))
        except DomainError as exc:
            logger.info("connect refused", extra={"code": exc.code})
            if exc.status == 401:
                metrics.count("KeyAuthFailures")
            return _refuse(exc)
    elif route == "$disconnect":
        live.disconnect(connection_id)
    else:
        body = event.get("body")
        if event.get("isBase64Encoded") and body:
            import base64

            body = base64.b64decode(body)
        live.handle(connection_id, body)
    return {"statusCode": 200}
