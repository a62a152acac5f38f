"""Send messages to WebSocket clients through API Gateway's @connections management API.

The endpoint is configuration (WS_MANAGEMENT_ENDPOINT: https://<api>.execute-api.<region>.amazonaws.com/<stage>
on AWS, the local gateway's http://127.0.0.1:8766/live locally), so the same code runs in both.
Throttling (429) and 5xx answers are retried; 410 Gone means the client is gone; anything else
is logged and reported, never raised, so one bad connection cannot sink a batch.

Why not the boto3 client: fan-out is one HTTP request per subscriber per update. Measured here
(tests/bench/bench_ws.py; figures in issue 4's notes) the client's machinery around each request
(validation, serialisation, event hooks, parsing, retry handlers) plus a thread hand-off per post
cost ~1.3 ms of CPU a post; aiohttp on one event loop costs ~0.12 ms, and a batch crosses threads
once. Signing: botocore's general SigV4Auth (any header set, query strings, URL normalisation)
took 0.08-0.13 ms a post, half of what was left; these two requests have one fixed shape, so
`ConnectionsSigner` does SigV4 for that shape in 0.01 ms. A unit test holds it byte-identical to the
boto3 client's requests (path, date, token, signature) for the same clock.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import hashlib
import hmac
import os
import random
import threading
import weakref
from collections.abc import Callable, Iterable
from urllib.parse import quote, urlsplit

import orjson

from . import aws
from .event_loop import new_event_loop
from .logs import get_logger

OK, GONE, FAILED = "ok", "gone", "failed"
DEFAULT_CONCURRENCY = 32
MAX_ATTEMPTS = 3  # as botocore's standard retry mode
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_BASE_SECONDS = 0.05  # a live bar is stale after seconds: retry fast, with full jitter

logger = get_logger("tradowix-live")


def encode(message: dict | bytes) -> bytes:
    return message if isinstance(message, bytes) else orjson.dumps(message)


DEFAULT_PORTS = {"http": 80, "https": 443}


class ConnectionsSigner:
    """AWS Signature Version 4 for @connections requests (service execute-api): no query string,
    signed headers host, x-amz-date and, with role credentials, x-amz-security-token.

    A fan-out signs one request per subscriber, all to the same endpoint within the same second,
    mostly with the same body: what is the same for all of them (host, the path up to the
    connection id, the date, the derived key, the body's hash) is worked out once (the signer was
    a fifth of the posting thread's CPU)."""

    def __init__(self, region: str):
        self.region = region
        self._keys: dict[tuple[str, str], bytes] = {}  # (secret, day) -> signing key
        self._prefixes: dict[str, tuple[str, str]] = {}  # URL up to its last '/' -> (host, path)
        self._date: tuple[dt.datetime, str] | None = None  # (second, X-Amz-Date)
        self._body: tuple[bytes, str] | None = None  # (body, its SHA-256)

    def headers(self, method: str, url: str, body: bytes, credentials, now: dt.datetime) -> dict[str, str]:
        prefix, _, last = url.rpartition("/")
        host, path = self._prefix(prefix)
        amz_date = self._amz_date(now)
        signed = {"host": host, "x-amz-date": amz_date}
        if credentials.token:
            signed["x-amz-security-token"] = credentials.token
        names = ";".join(signed)  # already in sorted order
        canonical = "\n".join(
            [
                method,
                # URI-encoded again, as SigV4 wants for non-S3 services
                f"{path}/{quote(last, safe='/~')}",
                "",  # no query string
                *(f"{name}:{value}" for name, value in signed.items()),
                "",
                names,
                self._payload_hash(body),
            ]
        )
        scope = f"{amz_date[:8]}/{self.region}/execute-api/aws4_request"
        string_to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = self._signing_key(credentials.secret_key, amz_date[:8])
        signature = hmac.digest(key, string_to_sign.encode(), "sha256").hex()
        headers = {
            "X-Amz-Date": amz_date,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={names}, Signature={signature}",
        }
        if credentials.token:
            headers["X-Amz-Security-Token"] = credentials.token
        return headers

    def _prefix(self, prefix: str) -> tuple[str, str]:
        found = self._prefixes.get(prefix)
        if found is None:
            parts = urlsplit(prefix)
            host = parts.hostname or ""
            if parts.port and parts.port != DEFAULT_PORTS.get(parts.scheme):
                host += f":{parts.port}"
            if len(self._prefixes) >= 8:  # one endpoint per poster: bounded all the same
                self._prefixes.clear()
            found = self._prefixes[prefix] = (host, quote(parts.path, safe="/~"))
        return found

    def _amz_date(self, now: dt.datetime) -> str:
        second = now.replace(microsecond=0)
        cached = self._date
        if cached is None or cached[0] != second:
            cached = self._date = (second, now.strftime("%Y%m%dT%H%M%SZ"))
        return cached[1]

    def _payload_hash(self, body: bytes) -> str:
        cached = self._body
        if cached is None or cached[0] is not body:
            cached = self._body = (body, hashlib.sha256(body).hexdigest())
        return cached[1]

    def _signing_key(self, secret: str, day: str) -> bytes:
        key = self._keys.get((secret, day))
        if key is None:  # derived once a day per secret, not once a request
            key = ("AWS4" + secret).encode()
            for part in (day, self.region, "execute-api", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {(secret, day): key}
        return key


def _close_at_exit(ref: weakref.ref) -> None:
    poster = ref()
    if poster is not None:
        poster.close()


class ConnectionPoster:
    """Thread-safe, blocking API; the requests themselves run on a private event loop thread."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        region: str | None = None,
        credentials=None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ):
        if not endpoint_url:
            raise ValueError("the @connections endpoint is not configured (WS_MANAGEMENT_ENDPOINT)")
        self.endpoint_url = endpoint_url.rstrip("/")
        self.concurrency = concurrency
        self.region = (
            region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        )
        # botocore credentials; default: the principal this code runs as (aws.acting_as, the local
        # stack's functions), else the usual provider chain (resolved on first use)
        if credentials is None and aws.current_principal() is not None:
            credentials = aws.credentials()
        self._credentials = credentials
        self._signer = ConnectionsSigner(self.region)
        self._now = now
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._http = None  # aiohttp.ClientSession, created on the loop
        self._lock = threading.Lock()

    # -- the public, blocking API -------------------------------------------------------------
    def post(self, connection_id: str, message: dict | bytes) -> str:
        """Send one message; returns OK, GONE (the client is gone) or FAILED (logged)."""
        result, reason = self._run(self._call("POST", connection_id, encode(message)))
        if result == FAILED:
            logger.warning(
                "post_to_connection failed", extra={"connection_id": connection_id, "reason": reason}
            )
        return result

    def post_many(self, posts: Iterable[tuple[str, dict | bytes]]) -> list[str]:
        """Send many messages: connections concurrently (at most `concurrency` in flight), each
        connection's messages in the given order (a closing `bar` before its `timing`).
        Returns the results in the order given; after a GONE the connection's later messages
        are not attempted (GONE too). Failures are logged once per batch, not once per client."""
        posts = list(posts)  # holds the messages, so their ids stay unique while encoding
        encoded: dict[int, bytes] = {}  # one message goes to many connections: encode it once
        posts = [
            (cid, encoded.get(id(msg)) or encoded.setdefault(id(msg), encode(msg))) for cid, msg in posts
        ]
        if not posts:
            return []
        outcomes = self._run(self._post_all(posts))
        failed = [reason for result, reason in outcomes if result == FAILED]
        if failed:
            logger.warning(
                "post_to_connection failed",
                extra={"failed": len(failed), "of": len(posts), "reasons": sorted(set(failed))[:5]},
            )
        return [result for result, _ in outcomes]

    def delete(self, connection_id: str) -> str:
        """Close a client's connection (DELETE @connections/{id})."""
        result, reason = self._run(self._call("DELETE", connection_id))
        if result == FAILED:
            logger.warning(
                "delete_connection failed", extra={"connection_id": connection_id, "reason": reason}
            )
        return result

    def close(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._close_http(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()

    # -- the event loop -------------------------------------------------------------------------
    def _run(self, coroutine):
        loop = self._started_loop()
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("ConnectionPoster's blocking API called from its own event loop")
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    def _started_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="ws-post", daemon=True)
                self._thread.start()
                # A process that ends without close() (the local stack's in-process functions)
                # still closes its HTTP session: no "Unclosed client session" on Ctrl-C.
                atexit.register(_close_at_exit, weakref.ref(self))
            return self._loop

    async def _session(self):
        if self._http is None:
            import ssl

            import aiohttp
            import botocore.session
            from botocore.httpsession import get_cert_path

            if self._credentials is None:
                self._credentials = botocore.session.get_session().get_credentials()
            # The CA bundle boto3 trusts; aiohttp sets TCP_NODELAY and keeps connections alive.
            # No cookie jar: @connections sets no cookies, and a jar is looked up on every request.
            tls = ssl.create_default_context(cafile=get_cert_path(True))
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.concurrency, ssl=tls),
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=10, sock_connect=2, sock_read=5),
                skip_auto_headers=("User-Agent", "Content-Type"),
            )
        return self._http

    async def _close_http(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- requests -------------------------------------------------------------------------------
    async def _call(self, method: str, connection_id: str, data: bytes | None = None) -> tuple[str, str]:
        """(OK | GONE | FAILED, reason)."""
        import aiohttp
        from yarl import URL

        http = await self._session()
        if self._credentials is None:
            return FAILED, "NoCredentialsError"
        url = f"{self.endpoint_url}/@connections/{quote(connection_id, safe='')}"
        reason = ""
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                await asyncio.sleep(random.uniform(0, RETRY_BASE_SECONDS * 2**attempt))
            # Signed on each attempt (the signature carries the time); credentials frozen per
            # request, since role credentials (ECS task) refresh underneath us.
            headers = self._signer.headers(
                method, url, data or b"", self._credentials.get_frozen_credentials(), self._now()
            )
            try:
                async with http.request(  # the URL exactly as signed (no re-quoting of %3D)
                    method, URL(url, encoded=True), data=data, headers=headers
                ) as response:
                    status = response.status
                    error_type = response.headers.get("x-amzn-ErrorType", "")
                    await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = type(exc).__name__  # refused, reset, timed out: retried
                continue
            if status < 300:
                return OK, ""
            if status == 410:
                return GONE, "GoneException"
            reason = error_type.split(":")[0] or str(status)
            if status not in RETRY_STATUSES:
                return FAILED, reason
        return FAILED, reason

    async def _post_all(self, posts: list[tuple[str, bytes]]) -> list[tuple[str, str]]:
        by_connection: dict[str, list[int]] = {}
        for index, (cid, _) in enumerate(posts):
            by_connection.setdefault(cid, []).append(index)
        groups = iter(by_connection.values())
        outcomes: list[tuple[str, str]] = [(FAILED, "")] * len(posts)

        async def worker() -> None:  # a fixed number of workers, not a task per connection
            for indexes in groups:
                for n, index in enumerate(indexes):
                    cid, data = posts[index]
                    outcomes[index] = await self._call("POST", cid, data)
                    if outcomes[index][0] == GONE:
                        for rest in indexes[n + 1 :]:
                            outcomes[rest] = (GONE, "GoneException")
                        break

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(by_connection)))))
        return outcomes
