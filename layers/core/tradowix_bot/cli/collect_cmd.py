"""`collect`: run the collector (the container's entry point too).

python -m tradowix_bot.cli collect --source tradowix --token-file …   the real upstream
python -m tradowix_bot.cli collect --source synthetic                 offline / demos
python -m tradowix_bot.cli collect --source replay --replay-dir DIR   original files
python -m tradowix_bot.cli collect --source ccxt --exchange binance --markets BTC/USDT,ETH/USDT
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import signal
import uuid
from pathlib import Path


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "collect",
        help="run the collector: upstream ticks → 1m bars in the candle store",
        description="Run the collector until Ctrl-C / SIGTERM.",
    )
    add_source_args(p)
    p.add_argument("--lease-seconds", type=float, default=_float_env("COLLECTOR_LEASE_SECONDS", 30.0))
    p.add_argument(
        "--backfill-days",
        type=float,
        default=_float_env("BUILD_RETENTION_DAYS", 7),
        help="history to build on an empty store (default BUILD_RETENTION_DAYS, 7)",
    )
    p.add_argument(
        "--trim",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="delete old days itself (default: on when AWS_ENDPOINT_URL points at an emulator)",
    )
    p.add_argument(
        "--owner", help="lease owner id (default: host:pid:random; a fixed id retakes its lease at once)"
    )
    p.add_argument("--auth-backoff", type=float, default=_float_env("COLLECTOR_AUTH_BACKOFF", 300.0))
    p.set_defaults(run=run)


def add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source",
        choices=("tradowix", "synthetic", "replay", "ccxt"),
        help="default: tradowix if a token is set",
    )
    p.add_argument("--exchange", help="--source ccxt: a ccxt exchange id, e.g. binance, kraken, okx")
    p.add_argument(
        "--markets",
        help="--source ccxt: markets, e.g. BTC/USDT,ETH/USDT (stored as BTC-USDT; A/B=NAME to rename)",
    )
    p.add_argument("--symbols", help="comma-separated symbols (default: all the source offers)")
    p.add_argument(
        "--url",
        default=os.environ.get("TRADOWIX_WS_URL"),
        help="upstream WebSocket URL (default: TRADOWIX_WS_URL, else the Tradowix upstream)",
    )
    p.add_argument(
        "--token", help="Tradowix session token (default: TRADOWIX_SESSION_TOKEN, SSM, token file)"
    )
    p.add_argument("--replay-dir", type=Path, help="directory of <SYMBOL>.json / .csv for --source replay")
    p.add_argument("--stack", help="deployed stack name (default: local stack / environment)")
    # Market-time compression for tests and benchmarks; never set in production.
    p.add_argument(
        "--clock-speed", type=float, default=_float_env("TRADOWIX_CLOCK_SPEED", 1.0), help=argparse.SUPPRESS
    )
    p.add_argument(
        "--clock-anchor",
        type=float,
        default=_float_env("TRADOWIX_CLOCK_ANCHOR", 0.0) or None,
        help=argparse.SUPPRESS,
    )


def build_source(args: argparse.Namespace, clock):
    from tradowix_bot.collector.token import load_token
    from tradowix_bot.server import aws

    from .target import data_dir

    kind = args.source
    token = None
    if kind in (None, "tradowix"):
        token = load_token(args.token, data_dir=data_dir())
        if kind is None and not token and not aws.endpoint_url():
            # Never fill a real (AWS) store with synthetic prices by accident.
            raise SystemExit(
                "error: no session token; pass --source synthetic explicitly to use made-up data"
            )
        if kind is None:
            kind = "tradowix" if token else "synthetic"
    if kind == "synthetic":
        from tradowix_bot.collector.synthetic import SyntheticSource

        return SyntheticSource(clock)
    if kind == "ccxt":
        from tradowix_bot.collector.ccxt_source import CcxtSource, parse_markets

        if not args.exchange or not args.markets:
            raise SystemExit("error: --source ccxt needs --exchange and --markets (e.g. binance BTC/USDT)")
        return CcxtSource(args.exchange, parse_markets(args.markets), clock)
    if kind == "replay":
        from tradowix_bot.collector.replay import ReplaySource

        if args.replay_dir is None:
            raise SystemExit("error: --source replay needs --replay-dir")
        return ReplaySource(args.replay_dir, clock)
    from tradowix_bot.collector.tradowix import DEFAULT_URL, TradowixSource

    if not token and not os.environ.get("TRADOWIX_TOKEN_PARAMETER"):
        raise SystemExit(
            "error: no Tradowix session token: pass --token, set TRADOWIX_SESSION_TOKEN, or store it "
            f"in {data_dir() / 'session-token'} (chmod 600)"
        )
    # With a token parameter (the container on ECS) a token not stored yet is waited for (the
    # status record says so): exiting would only make ECS restart the task forever.
    # A token the owner replaces (admin panel → SSM, or the token file) is picked up while the
    # upstream refuses the current one; an explicit --token or TRADOWIX_SESSION_TOKEN still wins.
    return TradowixSource(
        args.url or DEFAULT_URL,
        token,
        clock,
        reload_token=functools.partial(load_token, args.token, data_dir=data_dir()),
        auth_backoff=getattr(args, "auth_backoff", 300.0),  # its links wait as long as the collector
    )


def stores(args: argparse.Namespace):
    from .target import resolve

    # Today's and yesterday's objects of up to 256 symbols stay cached (the lease holder's copy).
    services = resolve(args.stack).services(day_cache_entries=512)
    return services.store(), services.state()


def live_fanout():
    """The live WebSocket fan-out runs in the collector (see docs/live-streaming.md) wherever a
    WebSocket API is configured: WS_MANAGEMENT_ENDPOINT on AWS, the local gateway's locally."""
    if not os.environ.get("WS_MANAGEMENT_ENDPOINT") or os.environ.get("TRADOWIX_LIVE_FANOUT") == "off":
        return None, []  # no WebSocket API, or the owner runs the fan-out elsewhere
    from tradowix_bot.server.services import Services, live_settings

    publisher = Services(live_settings, metrics_service="collector").publisher().start()
    print("[collector] live fan-out to " + os.environ["WS_MANAGEMENT_ENDPOINT"], flush=True)
    # Started, its on_bar only queues the update for its own delivery thread: no extra thread
    # in between (a hand-over per tick cost more CPU than the fan-out's own work).
    return publisher, [publisher]


def run(args: argparse.Namespace) -> int:
    from tradowix_bot.collector import Clock, Collector
    from tradowix_bot.server import aws
    from tradowix_bot.server.redact import register_environment_secrets

    register_environment_secrets()  # their values never reach a log line or a status record
    clock = Clock(args.clock_speed, args.clock_anchor)
    store, state = stores(args)  # first: finding the local stack sets its emulator endpoint
    source = build_source(args, clock)
    trim = args.trim if args.trim is not None else bool(aws.endpoint_url())
    publisher, sinks = live_fanout()
    collector = Collector(
        source,
        store,
        state,
        symbols=[s.strip() for s in args.symbols.split(",") if s.strip()] if args.symbols else None,
        clock=clock,
        lease_seconds=args.lease_seconds,
        backfill_days=args.backfill_days,
        retention_days=_float_env("RETENTION_DAYS", 3),
        build_retention_days=_float_env("BUILD_RETENTION_DAYS", 7),
        trim=trim,
        auth_backoff=args.auth_backoff,
        owner=args.owner,
        sinks=sinks,
    )

    from tradowix_bot.collector.metrics import CollectorMetrics
    from tradowix_bot.server import logs

    logs.bind_process(run_id=uuid.uuid4().hex[:12], owner=collector.owner)  # on every log line
    reporter = CollectorMetrics(collector)  # EMF about once a minute (alarms, health view)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await asyncio.gather(collector.run(stop), reporter.run(stop))

    print(f"[collector] source={source.name} owner={collector.owner}", flush=True)
    try:
        asyncio.run(main())
    finally:
        if publisher is not None:
            publisher.stop()
    print("[collector] stopped", flush=True)
    return 0
