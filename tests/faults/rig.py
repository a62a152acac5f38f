"""The fault-injection rig: the data services (moto's server, its own process), a stand-in
Tradowix upstream, collector processes (the real `collect` command) on a compressed clock,
and what partners see: the partner API and the WebSocket routes as the Lambda runs them
(API Gateway events, in this process), on the same compressed timeline.

Figures are judged against an oracle: the synthetic market's own bars, computed from the
very ticks the stand-in upstream sends.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from polling import eventually
from tradowix_bot.collector.clock import Clock
from tradowix_bot.collector.synthetic_market import SyntheticMarket

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "unit" / "events"
SPEED = 30.0  # a market minute every 2 wall seconds
LEASE = (
    150.0  # clock seconds: 5 wall seconds at SPEED (renewed every 50: a loaded machine's rounds take seconds)
)
FIGURES = ROOT / "test-artifacts" / "fault-figures.json"


# The market timeline starts at 2024-01-02 12:00 UTC: a day after the synthetic market's origin
# (its price walk is quick to compute for 30 symbols), at noon (no day boundary in a scenario).
MARKET_START = 1_704_196_800


def minute_of(t: float) -> int:
    return int(t) - int(t) % 60


def compressed_clock(speed: float, start: float = MARKET_START) -> Clock:
    """A clock at `speed` that reads `start` now: anchor + (wall - anchor) * speed = start."""
    wall = time.time()
    return Clock(speed, (speed * wall - start) / (speed - 1))


class CollectorProcess:
    """`python -m tradowix_bot.cli collect …` against the rig's services and clock."""

    def __init__(self, rig: Rig, name: str, *args: str, symbols: str, source: str = "tradowix"):
        self.rig = rig
        self.name = name
        self.log = rig.tmp / f"{name}-{len(rig.collectors)}.log"  # one per process
        env = dict(os.environ)
        env.update(rig.env)
        env.update(
            TRADOWIX_CLOCK_SPEED=str(rig.clock.speed),
            TRADOWIX_CLOCK_ANCHOR=str(rig.clock.anchor),
            TRADOWIX_DATA_DIR=str(rig.tmp / "data"),
            TRADOWIX_LIVE_FANOUT="off",
        )
        env.pop("TRADOWIX_SESSION_TOKEN", None)
        cmd = [sys.executable, "-m", "tradowix_bot.cli", "collect", "--source", source, "--symbols", symbols]
        if source == "tradowix":
            cmd += ["--url", rig.upstream.url, "--token", "good-token"]
        cmd += ["--owner", name, "--lease-seconds", str(LEASE), "--backfill-days", "0.01", *args]
        self.process = subprocess.Popen(cmd, env=env, stdout=self.log.open("a"), stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, needle: str, count: int = 1, timeout: float = 60) -> None:
        def logged() -> bool:
            assert self.process.poll() is None, f"{self.name} exited:\n{self.text()[-3000:]}"
            return self.text().count(needle) >= count

        eventually(logged, timeout, f"{self.name}: {needle!r} x{count} in its log", interval=0.05)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class LambdaContext:
    function_name: str = "ApiFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ApiFunction"
    aws_request_id: str = "req"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


class Partner:
    """What a partner sees: /api/candles and /api/live/status through the partner API's Lambda
    handler (API Gateway payload 2.0 events), and the WebSocket routes' `history`, both with
    their clock on the rig's timeline. One event loop per thread (Mangum runs one)."""

    def __init__(self, clock: Clock, monkeypatch):
        sys.path.insert(0, str(ROOT / "functions" / "ws"))
        from live_ws import context as ws_context
        from partner_api import context
        from tradowix_bot.server import services
        from tradowix_bot.server.market import MarketData
        from tradowix_bot.server.store import CandleStore

        # the composition root builds both functions' parts: the same ones, on the rig's clock
        monkeypatch.setattr(services, "MarketData", functools.partial(MarketData, clock=clock.now))
        # the store's "today" (re-validated on every read) is the market's today too
        monkeypatch.setattr(services, "CandleStore", functools.partial(CandleStore, clock=clock.now))
        for function_context in (context, ws_context):
            function_context.reset()
        self.monkeypatch = monkeypatch
        # A line per request is noise here. Put back after the test: the level is the process's,
        # and later tests (tests/unit/test_api_logs.py) read those lines.
        import partner_api.app  # noqa: F401 - its logger configured first (Powertools does it once)

        api_logger = logging.getLogger("tradowix-api")
        self._api_log_level = api_logger.level
        api_logger.setLevel(logging.WARNING)
        self._template = json.loads((EVENTS / "candles_get.json").read_text())
        self._local = threading.local()

    def get(self, path: str, **query) -> tuple[int, dict]:
        from partner_api.app import handler

        if not hasattr(self._local, "loop"):
            self._local.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._local.loop)
        event = copy.deepcopy(self._template)
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["pathParameters"] = {"proxy": path.removeprefix("/api/")}
        event["queryStringParameters"] = {k: str(v) for k, v in query.items()} or None
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
        answer = handler(event, LambdaContext())
        return answer["statusCode"], json.loads(answer["body"])

    def candles(self, symbol: str, limit: int = 40) -> dict:
        status, body = self.get("/api/candles", symbol=symbol, limit=limit)
        assert status == 200, body
        return body

    def live_status(self) -> dict:
        return self.get("/api/live/status")[1]

    def ws_history(self, symbol: str) -> dict:
        """Connect and subscribe (1m) through the WebSocket routes; returns the `history` message."""
        from live_ws import context, handler

        sent: list[dict] = []

        class Poster:  # stands in for @connections: keeps what would be sent
            def __init__(self, endpoint):
                pass

            def post(self, connection_id, message):
                sent.append(message if isinstance(message, dict) else json.loads(message))
                return "ok"

            def delete(self, connection_id):
                return "ok"

        self.monkeypatch.setattr("tradowix_bot.server.live_poster.ConnectionPoster", Poster)
        context.reset()
        connect = json.loads((EVENTS / "ws_connect.json").read_text())
        assert handler.handler(connect, None)["statusCode"] == 200
        message = json.loads((EVENTS / "ws_message.json").read_text())
        message["body"] = json.dumps({"type": "subscribe", "symbol": symbol, "timeframe": 60})
        handler.handler(message, None)
        context.reset()
        history = [m for m in sent if m.get("type") == "history"]
        assert history, sent
        return history[0]


class Poller(threading.Thread):
    """A partner's bot reading the newest candles of some symbols as fast as it can."""

    def __init__(self, partner: Partner, clock: Clock, symbols: list[str]):
        super().__init__(daemon=True)
        self.partner = partner
        self.clock = clock
        self.symbols = symbols
        self.polls: dict[str, list[tuple[float, dict]]] = {s: [] for s in symbols}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            for symbol in self.symbols:
                now = self.clock.now()
                answer = self.partner.candles(symbol)
                self.polls[symbol].append((now, answer))
            time.sleep(0.02)

    def stop(self) -> None:
        self._halt.set()
        self.join(30)


@dataclass
class Figures:
    scenario: str
    recovery_seconds: float | None  # market seconds from the fault until every answer is right again
    recovery_wall_seconds: float | None
    lost: int = 0  # minutes missing from the stored series
    duplicated: int = 0  # minutes served or stored twice
    wrong: int = 0  # minutes served as closed with values that are not the market's
    answers: int = 0
    extra: dict = field(default_factory=dict)


def wrong_closed(answer: dict, symbol: str, market: SyntheticMarket) -> list[dict]:
    candles = answer["candles"]
    closed = candles if answer["last_closed"] else candles[:-1]
    out = []
    for c in closed:
        truth = market.bar(symbol, c["time"])
        if truth is None or tuple(c[k] for k in ("time", "open", "high", "low", "close")) != tuple(truth):
            out.append(c)
    return out


class Rig:
    def __init__(
        self, tmp: Path, endpoint: str, names: dict, monkeypatch, speed: float = SPEED, symbols=None
    ):
        from tradowix_bot.symbols import DEFAULT_SYMBOLS
        from upstream_standin import StandinUpstream

        self.tmp = tmp
        self.names = names
        self.clock = compressed_clock(speed)
        self.infos = tuple(symbols or DEFAULT_SYMBOLS)
        self.market = SyntheticMarket(self.infos)
        self.upstream = StandinUpstream(self.clock, symbols=self.infos).start()
        self.env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "CANDLES_BUCKET": names["CandlesBucket"],
            "STATE_TABLE": names["StateTable"],
            "KEYS_TABLE": names["KeysTable"],
        }
        self.partner = Partner(self.clock, monkeypatch)
        self.collectors: list[CollectorProcess] = []

    def collector(self, name: str, *args: str, symbols: str, source: str = "tradowix") -> CollectorProcess:
        c = CollectorProcess(self, name, *args, symbols=symbols, source=source)
        self.collectors.append(c)
        return c

    def poller(self, symbols: list[str]) -> Poller:
        poller = Poller(self.partner, self.clock, symbols)
        poller.start()
        return poller

    def to_second(self, second: float) -> float:
        """Wait (wall) until the market clock is `second` seconds into a minute; returns the time."""
        while True:
            now = self.clock.now()
            if second <= now % 60 <= second + 2:
                return now
            time.sleep(0.005)

    def wait_market(self, seconds: float) -> None:
        time.sleep(self.clock.wall(seconds))

    def lease_holder(self, symbol: str) -> str | None:
        from tradowix_bot.server.state import StateStore

        item = StateStore(self.names["StateTable"]).get("lease", symbol)
        return item["owner"] if item and float(item["expires_at"]) >= self.clock.now() else None

    def lease_holders(self) -> dict[str, str]:
        """Symbol → the collector whose lease on it runs now (one query)."""
        from tradowix_bot.server.state import StateStore

        now = self.clock.now()
        return {
            s: owner
            for s, (owner, expires) in StateStore(self.names["StateTable"]).leases().items()
            if expires >= now
        }

    def stored(self, symbol: str) -> list[tuple]:
        from tradowix_bot.server.store import CandleStore

        return CandleStore(self.names["CandlesBucket"]).read(symbol) or []

    def assess(
        self,
        scenario: str,
        symbol: str,
        polls,
        fault_at: float,
        *,
        since: float | None = None,
        fresh_within: float = 2.0,
    ) -> Figures:
        """Judge every answer a partner got and the stored series against the oracle.

        An answer is right when nothing in it is presented as closed unless it is the market's
        own bar, no minute is missing or repeated in it, and it is fresh: it reaches the minute
        before the one running (allowing `fresh_within` wall seconds for the close to be
        written: a loaded machine)."""
        allowance = self.clock.slack(fresh_within)
        wrong: dict[int, dict] = {}
        duplicated = 0
        right_since = None
        last_wrong = None
        for t, answer in polls:
            times = [c["time"] for c in answer["candles"]]
            duplicated += len(times) - len(set(times))
            bad = wrong_closed(answer, symbol, self.market)
            for c in bad:
                wrong[c["time"]] = c
            gapless = all(b - a == 60 for a, b in zip(times, times[1:], strict=False))
            fresh = bool(times) and times[-1] >= minute_of(t - allowance) - 60
            ok = not bad and gapless and fresh
            if t >= fault_at:
                if ok and right_since is None:
                    right_since = t
                elif not ok:
                    right_since = None
                    last_wrong = (
                        round(t % 3600, 1),
                        "wrong" if bad else "gap" if not gapless else "stale",
                        times[-3:],
                    )
        stored = self.stored(symbol)
        stored_times = [b[0] for b in stored if since is None or b[0] >= since]
        lost = (
            len(set(range(stored_times[0], stored_times[-1] + 60, 60)) - set(stored_times))
            if stored_times
            else 0
        )
        duplicated += len(stored_times) - len(set(stored_times))
        wrong_stored = [b for b in stored if tuple(b[:5]) != tuple(self.market.bar(symbol, b[0]) or ())]
        recovery = None if right_since is None else round(right_since - fault_at, 1)
        return Figures(
            scenario,
            recovery,
            None if recovery is None else round(self.clock.wall(recovery), 2),
            lost=lost,
            duplicated=duplicated,
            wrong=len(wrong) + len(wrong_stored),
            answers=len(polls),
            extra={"last_wrong_answer": last_wrong} if right_since is None else {},
        )

    def close(self) -> None:
        for c in self.collectors:
            c.stop()
        self.upstream.stop()
        logging.getLogger("tradowix-api").setLevel(self.partner._api_log_level)


def record(figures: Figures) -> None:
    """Print the scenario's figures and keep them in test-artifacts/fault-figures.json."""
    line = {k: v for k, v in figures.__dict__.items()}
    print(f"\nFAULT FIGURES {json.dumps(line)}")
    FIGURES.parent.mkdir(exist_ok=True)
    data = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    data[figures.scenario] = line
    FIGURES.write_text(json.dumps(data, indent=2) + "\n")
