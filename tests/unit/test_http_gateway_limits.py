"""Given the local HTTP gateway, when a client sends a body over API Gateway's 10 MB limit, then it
answers 413 as API Gateway does, without reading more of the body than the limit (declared with
Content-Length: nothing read at all; chunked: reading stops at the limit), and the function never
runs. A body at the limit still reaches the function whole."""

from __future__ import annotations

import asyncio
import json

import pytest
from tradowix_local.http_gateway import HttpGateway
from tradowix_local.template import Route

pytestmark = pytest.mark.security

CHUNK = 1024 * 1024
MAX_BODY_BYTES = 10 * CHUNK  # API Gateway HTTP API's payload limit


class RecordingFunction:
    def __init__(self):
        self.events: list[dict] = []

    def invoke(self, event):
        self.events.append(event)
        return {"statusCode": 200, "body": json.dumps({"got": len(event.get("body") or "")})}


class Client:
    """Sends one request to the gateway and counts how many body bytes the gateway pulled."""

    def __init__(self, chunks: int, content_length: int | None, chunk: bytes = b"x" * CHUNK):
        self.chunks, self.chunk, self.content_length = chunks, chunk, content_length
        self.pulled = 0

    async def receive(self):
        if self.pulled >= self.chunks * len(self.chunk):
            return {"type": "http.request", "body": b"", "more_body": False}
        self.pulled += len(self.chunk)
        return {"type": "http.request", "body": self.chunk, "more_body": True}

    def request(self, gateway) -> tuple[int, bytes]:
        headers = [(b"host", b"127.0.0.1"), (b"content-type", b"text/plain")]
        if self.content_length is not None:
            headers.append((b"content-length", str(self.content_length).encode()))
        else:
            headers.append((b"transfer-encoding", b"chunked"))
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/api/auth/verify",
            "raw_path": b"/api/auth/verify",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8765),
        }
        sent: list[dict] = []

        async def send(message):
            sent.append(message)

        loop = asyncio.new_event_loop()  # not asyncio.run: it would unset the thread's loop Mangum uses
        try:
            loop.run_until_complete(gateway(scope, self.receive, send))
        finally:
            loop.close()
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return status, body


@pytest.fixture
def function():
    return RecordingFunction()


@pytest.fixture
def gateway(function):
    return HttpGateway([Route("ANY", "/api/{proxy+}", "Api")], {"Api": function})


def test_a_declared_body_over_10_mb_is_413_before_one_byte_is_read(gateway, function):
    client = Client(chunks=400, content_length=400 * CHUNK)  # the 400 MB of the report
    status, body = client.request(gateway)
    assert status == 413 and json.loads(body) == {"message": "Request Entity Too Large"}
    assert client.pulled == 0 and function.events == []


def test_a_chunked_body_over_10_mb_is_413_and_reading_stops_at_the_limit(gateway, function):
    client = Client(chunks=400, content_length=None)
    status, _ = client.request(gateway)
    assert status == 413 and function.events == []
    assert client.pulled <= MAX_BODY_BYTES + CHUNK


def test_a_body_at_the_limit_reaches_the_function_whole(gateway, function):
    client = Client(chunks=10, content_length=10 * CHUNK)
    status, body = client.request(gateway)
    assert status == 200 and json.loads(body) == {"got": MAX_BODY_BYTES}
