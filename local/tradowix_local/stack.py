"""`python -m tradowix_bot.cli chart`: the whole product on 127.0.0.1, one process.

Starts the emulator, creates the template's resources, restores the last snapshot,
imports a candles directory if given, starts the collector (synthetic history + live bars), and
serves the local API Gateway. Ctrl-C (or SIGTERM) stops everything and saves a snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from tradowix_bot.event_loop import new_event_loop

from .emulator import LOCAL_CREDENTIALS, Emulator, create_resources
from .http_gateway import HttpGateway
from .lambda_runtime import LocalFunction
from .snapshot import restore, save
from .template import Template
from .ws_gateway import WsGateway

SNAPSHOT_SECONDS = 30


@dataclass
class StackOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    ws_port: int = 8766
    data_dir: Path = Path("data")
    endpoint: str | None = None
    candles_dir: Path | None = None
    seed: bool = True
    offline: bool = False
    open_path: str | None = None  # open this page of the stack in a browser once it is ready
    admin_only: bool = False  # serve the admin panel only: no partner API, no chart
    token: str | None = None
    collector: bool = True  # the synthetic/tradowix collector builds and streams history
    backfill_days: float | None = None


def _log(message: str) -> None:
    print(f"[local-stack] {message}", flush=True)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the stack stops all its servers together."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


class LocalStack:
    def __init__(self, options: StackOptions):
        self.options = options
        self.data_dir = options.data_dir.resolve()
        self.template = Template()
        self.emulator = Emulator(options.endpoint, host=options.host, template=self.template, log=_log)
        self.names: dict[str, str] = {}
        self.kinds: dict[str, str] = {}
        self._stop = threading.Event()
        self._servers: list[_Server] = []

    @property
    def api_url(self) -> str:
        return f"http://{self.options.host}:{self.options.port}"

    @property
    def snapshot_dir(self) -> Path:
        return self.data_dir / "emulator-snapshot"

    def runtime_file(self) -> Path:
        return self.data_dir / "local-stack.json"

    # -- start-up ------------------------------------------------------------------------
    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.emulator.start()
        _log(f"data services: {self.emulator.describe()}")
        self.names = create_resources(self.emulator, self.template)
        self._prepare_cloudwatch()
        self.kinds = {
            k: ("bucket" if self.template.resources[k]["Type"] == "AWS::S3::Bucket" else "table")
            for k in self.names
        }
        if self._embedded_names():  # a service the user runs keeps its own data
            loaded = restore(self.emulator, self._embedded_names(), self.snapshot_dir)
            if loaded:
                _log(f"restored {loaded} records from {self.snapshot_dir}")
        self.functions = self.template.functions(self._overrides())
        for fn in self.functions.values():
            os.environ.update(fn.environment)
        self._prepare_parameters()
        self._import_and_seed()

    def _embedded_names(self) -> dict[str, str]:
        """The buckets and tables the embedded emulator holds (saved in the data dir)."""
        service = {"bucket": "s3", "table": "dynamodb"}
        return {k: v for k, v in self.names.items() if self.emulator.embeds(service[self.kinds[k]])}

    def _prepare_cloudwatch(self) -> None:
        """The template's alarms and the functions' metrics in the emulator's CloudWatch."""
        from tradowix_bot import metrics

        from .cloudwatch import LocalCloudWatch

        self.cloudwatch = LocalCloudWatch(self.emulator, self.template, log=_log)
        self.cloudwatch.create_alarms()
        metrics.add_sink(self.cloudwatch.emf)
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"  # stored above, not printed on the console

    def _prepare_parameters(self) -> None:
        from .parameters import ensure_admin_secret, parameter_names, restore_parameters

        self.parameter_names = sorted(
            {n for fn in self.functions.values() for n in parameter_names(fn.environment).values()}
        )
        if self.emulator.embeds("ssm"):
            restore_parameters(self.emulator, self.data_dir)
        admin_parameter = os.environ.get("ADMIN_SECRET_PARAMETER")
        if admin_parameter:
            generated = ensure_admin_secret(self.emulator, admin_parameter)
            if generated:
                _log(f"admin secret (shown once; store it now, it is kept only as a hash): {generated}")

    def _overrides(self) -> dict[str, str]:
        overrides = {"WS_URL": f"ws://{self.options.host}:{self.options.ws_port}"}
        if os.environ.get("KEY_CACHE_SECONDS"):  # the user's (or tests') bound wins over the template default
            overrides["KEY_CACHE_SECONDS"] = os.environ["KEY_CACHE_SECONDS"]
        ws_api = self.template.websocket_api()
        if ws_api is not None:  # the @connections API of our WebSocket gateway (same port)
            overrides["WS_MANAGEMENT_ENDPOINT"] = (
                f"http://{self.options.host}:{self.options.ws_port}/{ws_api.stage}"
            )
        return overrides

    def _import_and_seed(self) -> None:
        from tradowix_bot import aws
        from tradowix_bot.importer import import_dir
        from tradowix_bot.store import CandleStore

        aws.reset()
        store = CandleStore(self.names["CandlesBucket"])
        if self.options.candles_dir is not None:
            if not self.options.candles_dir.is_dir():
                raise SystemExit(f"error: candles directory {self.options.candles_dir} does not exist")
            for result in import_dir(store, self.options.candles_dir):
                _log(result.error or f"imported {result.bars} bars of {result.symbol} from {result.path}")
        if self.options.seed and not self.options.collector:
            from .seed import seed_if_empty

            started = time.monotonic()
            written = seed_if_empty(store)
            if written:
                _log(f"seeded {written} synthetic 1m bars in {time.monotonic() - started:.1f}s")

    def _write_runtime_file(self) -> None:
        info = {
            "pid": os.getpid(),
            "api_url": self.api_url,
            "ws_url": f"ws://{self.options.host}:{self.options.ws_port}",
            "endpoint_url": self.emulator.endpoint_url,
            "aws_env": {  # the owner's credentials (this file is the owner's only)
                **{k: os.environ[k] for k in LOCAL_CREDENTIALS},
                **self.emulator.endpoint_environment(),
            },
            "candles_bucket": self.names["CandlesBucket"],
            "keys_table": self.names["KeysTable"],
            "state_table": self.names["StateTable"],
            "connections_table": self.names.get("ConnectionsTable"),
            "ws_management_endpoint": self._overrides().get("WS_MANAGEMENT_ENDPOINT"),
        }
        tmp = self.runtime_file().with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2))
        tmp.replace(self.runtime_file())

    # -- running -------------------------------------------------------------------------
    def _snapshot(self) -> None:
        if self._embedded_names():
            save(self.emulator, self._embedded_names(), self.kinds, self.snapshot_dir)
        if self.emulator.embeds("ssm"):
            from .parameters import save_parameters

            save_parameters(self.emulator, self.parameter_names, self.data_dir)

    def _snapshot_loop(self) -> None:
        while not self._stop.wait(SNAPSHOT_SECONDS):
            try:
                self._snapshot()
            except Exception as exc:  # noqa: BLE001 - keep serving; the next round retries
                _log(f"snapshot failed: {exc}")

    def apps(self) -> list[tuple[object, int]]:
        functions = {
            name: LocalFunction(
                fn, self.emulator.principal_environment(name), observer=self.cloudwatch.invoked
            )
            for name, fn in self.functions.items()
        }
        http = HttpGateway(self.template.http_routes(), functions)
        if self.options.admin_only:  # the admin panel alone: no partner API, no live WebSocket
            from .admin_only import AdminOnly

            return [(AdminOnly(http), self.options.port)]
        apps = [(http, self.options.port)]
        ws_api = self.template.websocket_api()
        if ws_api is not None:
            apps.append((WsGateway(ws_api, functions, iam=self.emulator.iam), self.options.ws_port))
        return apps

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)
        for app, port in self.apps():
            config = uvicorn.Config(
                app,
                host=self.options.host,
                port=port,
                log_level="warning",
                access_log=False,
                lifespan="off",
                # Not behind a proxy: a client's X-Forwarded-For must not become its source IP
                # (the admin panel throttles logins per address).
                proxy_headers=False,
                # As API Gateway: it sends no pings of its own (its idle timeout is the sweeper's)
                # and negotiates no permessage-deflate; both would also cost CPU per message.
                ws_ping_interval=None,
                ws_per_message_deflate=False,
            )
            self._servers.append(_Server(config))
        tasks = [asyncio.create_task(s.serve()) for s in self._servers]
        while not all(s.started for s in self._servers):
            if any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.05)
        self._write_runtime_file()
        _log(
            f"ready: partner API {self.api_url}  (try: curl '{self.api_url}/api/candles?symbol=BTCUSD-OTC&limit=3')"
        )
        _log("create a key: python -m tradowix_bot.cli keys create --name partner1   ·   Ctrl-C stops")
        _log(f"chart: {self.api_url}/   ·   admin panel: {self.api_url}/admin")
        if self.options.open_path is not None:
            import webbrowser

            webbrowser.open(self.api_url + self.options.open_path)
        await asyncio.gather(*tasks)

    def _check_port_free(self, port: int) -> None:
        """Fail with one clear line before starting anything (uvicorn would exit mid-start)."""
        import socket

        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.options.host, port))
            except OSError as exc:
                raise SystemExit(
                    f"error: cannot listen on {self.options.host}:{port} ({exc.strerror}); "
                    "is another stack running? choose other ports with --port / --ws-port"
                ) from None

    def request_stop(self) -> None:
        for server in self._servers:
            server.should_exit = True

    def _start_collector(self) -> None:
        from tradowix_bot.admin import SessionTokenStore
        from tradowix_bot.state import StateStore

        from .collector_process import CollectorProcess

        explicit = self.options.token or os.environ.get("TRADOWIX_SESSION_TOKEN")
        token_parameter = os.environ.get("SESSION_TOKEN_PARAMETER", "")  # the admin panel's
        stored = not explicit and token_parameter and SessionTokenStore(token_parameter).status()["set"]
        source = "synthetic" if self.options.offline or not (explicit or stored) else "tradowix"
        previous = (StateStore(self.names["StateTable"]).upstream_status() or {}).get("source")
        if source == "tradowix" and previous == "synthetic":
            _log(
                "warning: this data dir holds synthetic bars; to keep real and made-up prices apart, "
                "collect from Tradowix into a new --data-dir"
            )
        self.collector = CollectorProcess(
            self.data_dir,
            source=source,
            # An explicit token wins; else the collector reads the admin panel's stored token
            # itself (and re-reads it when the upstream refuses it: a replaced token is used).
            token=None if self.options.offline else explicit,
            token_parameter=token_parameter,
            backfill_days=self.options.backfill_days,
            log=_log,
            environment={
                **self.emulator.principal_environment("CollectorTaskRole"),
                "POWERTOOLS_METRICS_DISABLED": "false",  # it prints EMF; its supervisor stores it
                "TRADOWIX_METRICS_SECONDS": os.environ.get("TRADOWIX_METRICS_SECONDS", "10"),
            },
            emf_sink=self.cloudwatch.emf,
        )
        self.collector.start()
        if not self.collector.wait_backfilled(StateStore(self.names["StateTable"]), timeout=120):
            _log("collector has not finished its first backfill yet; serving anyway")

    def run(self) -> int:
        for port in [self.options.port] + ([] if self.options.admin_only else [self.options.ws_port]):
            self._check_port_free(port)
        self.prepare()
        self.collector = None
        if self.options.collector:
            self._start_collector()
        snapshots = threading.Thread(target=self._snapshot_loop, name="snapshot", daemon=True)
        snapshots.start()
        self.cloudwatch.start()  # evaluates the template's alarms every minute
        try:
            with asyncio.Runner(loop_factory=new_event_loop) as runner:  # uvloop where installed
                runner.run(self._serve())
        finally:
            self._stop.set()
            self.cloudwatch.stop()
            if self.collector is not None:
                self.collector.stop()
            with contextlib.suppress(FileNotFoundError):
                self.runtime_file().unlink()
            try:
                self._snapshot()
                _log(f"saved state to {self.snapshot_dir}")
            finally:
                self.emulator.stop()
                _log("stopped")
        return 0


def main(options: StackOptions) -> int:
    try:
        return LocalStack(options).run()
    except KeyboardInterrupt:
        return 130
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 1
        raise
