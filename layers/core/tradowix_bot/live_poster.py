"""Send messages to WebSocket clients through API Gateway's @connections management API.

The endpoint is configuration (WS_MANAGEMENT_ENDPOINT: https://<api>.execute-api.<region>.amazonaws.com/<stage>
on AWS, the local gateway's http://127.0.0.1:8766/live locally), so the same code runs in both.
Throttling and 5xx answers are retried by botocore (standard mode); 410 Gone means the client
is gone; anything else is logged and reported, never raised, so one bad connection cannot sink
a batch.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import orjson

from .logs import get_logger

OK, GONE, FAILED = "ok", "gone", "failed"
DEFAULT_CONCURRENCY = 32

logger = get_logger("tradowix-live")


def encode(message: dict | bytes) -> bytes:
    return message if isinstance(message, bytes) else orjson.dumps(message)


class ConnectionPoster:
    def __init__(self, endpoint_url: str, *, concurrency: int = DEFAULT_CONCURRENCY):
        if not endpoint_url:
            raise ValueError("the @connections endpoint is not configured (WS_MANAGEMENT_ENDPOINT)")
        self.endpoint_url = endpoint_url.rstrip("/")
        self.concurrency = concurrency
        self._client = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def client(self):
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3
                    from botocore.config import Config

                    self._client = boto3.session.Session().client(
                        "apigatewaymanagementapi",
                        endpoint_url=self.endpoint_url,
                        region_name=os.environ.get("AWS_REGION")
                        or os.environ.get("AWS_DEFAULT_REGION")
                        or "us-east-1",
                        config=Config(
                            max_pool_connections=self.concurrency,
                            connect_timeout=2,
                            read_timeout=5,
                            retries={"max_attempts": 3, "mode": "standard"},
                        ),
                    )
        return self._client

    def _call(self, operation: str, connection_id: str, **kwargs) -> tuple[str, str]:
        """(OK | GONE | FAILED, reason)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            getattr(self.client, operation)(ConnectionId=connection_id, **kwargs)
            return OK, ""
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status == 410 or code == "GoneException":
                return GONE, code
            return FAILED, str(code or status)
        except BotoCoreError as exc:
            return FAILED, type(exc).__name__

    def post(self, connection_id: str, message: dict | bytes) -> str:
        """Send one message; returns OK, GONE (the client is gone) or FAILED (logged)."""
        result, reason = self._call("post_to_connection", connection_id, Data=encode(message))
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
        posts = list(posts)
        by_connection: dict[str, list[int]] = {}
        for index, (cid, _) in enumerate(posts):
            by_connection.setdefault(cid, []).append(index)
        outcomes: list[tuple[str, str]] = [(FAILED, "")] * len(posts)

        def send_in_order(indexes: list[int]) -> None:
            for n, index in enumerate(indexes):
                cid, msg = posts[index]
                outcomes[index] = self._call("post_to_connection", cid, Data=encode(msg))
                if outcomes[index][0] == GONE:
                    for rest in indexes[n + 1 :]:
                        outcomes[rest] = (GONE, "GoneException")
                    return

        groups = list(by_connection.values())
        if len(groups) <= 1:
            for group in groups:
                send_in_order(group)
        else:
            list(self._executor().map(send_in_order, groups))
        failed = [reason for result, reason in outcomes if result == FAILED]
        if failed:
            logger.warning(
                "post_to_connection failed",
                extra={"failed": len(failed), "of": len(posts), "reasons": sorted(set(failed))[:5]},
            )
        return [result for result, _ in outcomes]

    def delete(self, connection_id: str) -> str:
        """Close a client's connection (DELETE @connections/{id})."""
        result, reason = self._call("delete_connection", connection_id)
        if result == FAILED:
            logger.warning(
                "delete_connection failed", extra={"connection_id": connection_id, "reason": reason}
            )
        return result

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="ws-post")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
