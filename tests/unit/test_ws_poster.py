"""Given an @connections endpoint on 127.0.0.1 answering as API Gateway does, when the poster
sends to it, then each connection's messages arrive in order, gone and failing connections
don't sink the batch, throttling is retried, and every request is signed and addressed
exactly as the boto3 client would do it."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import orjson
import pytest
from tradowix_bot.server.live_poster import FAILED, GONE, OK, ConnectionPoster


class FakeManagementApi(BaseHTTPRequestHandler):
    """API Gateway's @connections answers: 410 for `gone…`, 413 for `big`, 429 then 200 for
    `throttled…` (once per id), 200 otherwise. Keep-alive, like API Gateway."""

    protocol_version = "HTTP/1.1"
    received: list[tuple[str, str, dict, bytes]]
    throttled_once: set[str]
    lock = threading.Lock()

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(random.random() / 1000)  # interleave the connections
        cid = unquote(self.path.rsplit("/", 1)[-1])
        with self.lock:
            self.received.append((self.command, self.path, dict(self.headers), body))
            throttled = cid.startswith("throttled") and cid not in self.throttled_once
            self.throttled_once.add(cid)
        status, error = 200, ""
        if cid.startswith("gone"):
            status, error = 410, "GoneException"
        elif cid == "big":
            status, error = 413, "PayloadTooLargeException"
        elif throttled:
            status, error = 429, "LimitExceededException"
        payload = orjson.dumps({"message": error}) if error else b""
        self.send_response(status)
        if error:
            self.send_header("x-amzn-ErrorType", f"{error}:http://internal.amazon.com/coral/")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_DELETE = _answer

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def management_api(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    handler = type("Api", (FakeManagementApi,), {"received": [], "throttled_once": set()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/prod"
    server.shutdown()
    server.server_close()


def posted_to(received, cid: str) -> list[int]:
    return [orjson.loads(body)["n"] for _, path, _, body in received if unquote(path).endswith("/" + cid)]


def test_keeps_each_connections_order_and_skips_after_gone(management_api):
    # given five messages each for three live connections and one that is gone
    api, endpoint = management_api
    poster = ConnectionPoster(endpoint, concurrency=8)
    posts = [(cid, {"n": n}) for n in range(5) for cid in ("a", "b", "gone", "c")]
    # when they are posted as one batch
    results = poster.post_many(posts)
    poster.close()
    # then each live connection got its messages in order, the gone one was tried once
    for cid in ("a", "b", "c"):
        assert posted_to(api.received, cid) == [0, 1, 2, 3, 4]
    assert posted_to(api.received, "gone") == [0]
    assert [r for (cid, _), r in zip(posts, results, strict=True) if cid == "gone"] == [GONE] * 5
    assert results.count(OK) == 15


def test_retries_throttling_and_reports_other_failures_without_sinking_the_batch(management_api):
    # given a throttled connection, one whose message is too large, and a healthy one
    api, endpoint = management_api
    poster = ConnectionPoster(endpoint, concurrency=4)
    # when a batch is posted
    results = poster.post_many([("throttled-1", {"n": 1}), ("big", {"n": 2}), ("ok", {"n": 3})])
    # then the throttled message went through on the retry, the too-large one failed once
    # (not retried), and the healthy connection was served
    assert results == [OK, FAILED, OK]
    assert posted_to(api.received, "throttled-1") == [1, 1]
    assert posted_to(api.received, "big") == [2]
    assert posted_to(api.received, "ok") == [3]
    # and single posts and deletes report the same way
    assert poster.post("gone-2", b"{}") == GONE
    assert poster.delete("ok") == OK
    poster.close()


def test_an_unreachable_endpoint_fails_the_posts_and_raises_nothing(management_api):
    # given an endpoint nobody listens on
    _, endpoint = management_api
    poster = ConnectionPoster("http://127.0.0.1:1/prod", concurrency=2)
    # when posting
    started = time.monotonic()
    results = poster.post_many([("a", {"n": 1}), ("b", {"n": 2})])
    # then both are reported failed, quickly (retried, not hung)
    assert results == [FAILED, FAILED]
    assert time.monotonic() - started < 5
    poster.close()


@pytest.mark.parametrize("session_token", [None, "role-session-token"], ids=["user keys", "role credentials"])
def test_requests_are_signed_and_addressed_exactly_as_the_boto3_client_does(
    management_api, monkeypatch, session_token
):
    # given a fixed clock, user or role credentials, and a connection id with characters that
    # must be encoded
    import boto3
    import botocore.auth

    api, endpoint = management_api
    now = dt.datetime(2026, 11, 25, 12)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: now)
    if session_token:
        monkeypatch.setenv("AWS_SESSION_TOKEN", session_token)
    cid, data = "L0SM9cOF/vH+cIhw=", b'{"type":"bar"}'
    # when the boto3 client and the poster both post the same message and delete the connection
    client = boto3.session.Session().client(
        "apigatewaymanagementapi", endpoint_url=endpoint, region_name="eu-west-1"
    )
    client.post_to_connection(ConnectionId=cid, Data=data)
    client.delete_connection(ConnectionId=cid)
    poster = ConnectionPoster(endpoint, region="eu-west-1", now=lambda: now)
    assert poster.post(cid, data) == OK
    assert poster.delete(cid) == OK
    poster.close()
    # then the endpoint saw the same method, path, body, date and signature from both
    seen = [
        (
            method,
            path,
            headers["Authorization"],
            headers["X-Amz-Date"],
            headers.get("X-Amz-Security-Token"),
            body,
        )
        for method, path, headers, body in api.received
    ]
    assert seen[2:] == seen[:2]
    assert seen[0][1] == "/prod/@connections/L0SM9cOF%2FvH%2BcIhw%3D"
    assert seen[0][4] == session_token
    signed_headers = "host;x-amz-date;x-amz-security-token" if session_token else "host;x-amz-date"
    assert f"SignedHeaders={signed_headers}," in seen[0][2]
