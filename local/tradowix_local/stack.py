"""`python -m tradowix_bot.cli chart`: the whole product on 127.0.0.1, one process.

Starts the emulator, creates the template's resources, restores the last snapshot,
imports a candles directory if given, starts the collector (synthetic history + live bars), and
serves the local API Gateway. Ctrl-C (or SIGTERM) stops everything and saves a snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from tradowix_bot.server.event_loop import new_event_loop

from .emulator import LOCAL_CREDENTIALS, Emulator, create_resources
from .http_gateway import HttpGateway
from .journal import Journal, JournalMiddleware, StateFileError
from .lambda_runtime import LocalFunction
from .snapshot import NOT_SAVED, make_private, open_state, save
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
    service_endpoints: dict[str, str] | None = None  # per service, e.g. --localstack's S3 and SSM
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


WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def public_host(host: str) -> str:
    """The address partners use to reach a stack listening on `host`. 0.0.0.0 is where a
    server listens, not an address anyone can connect to: for it, this machine's address on
    its network (the interface a route out would use; no packet is sent), else its name."""
    import socket

    if host not in WILDCARD_HOSTS:
        return host
    family, probe = (socket.AF_INET6, "2001:db8::1") if host == "::" else (socket.AF_INET, "192.0.2.1")
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((probe, 9))  # UDP connect: picks the outgoing interface, sends nothing
            address = s.getsockname()[0]
        if not address.startswith(("127.", "::1", "0.")):
            return address
    except OSError:
        pass
    return socket.gethostname() or "127.0.0.1"


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def cli_command() -> str:
    """How to run the CLI from the folder the stack runs in, without activating the venv."""
    script = Path(sys.executable).parent / "tradowix"
    if not script.exists():
        return f"{sys.executable} -m tradowix_bot.cli"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def freeze_startup_objects() -> None:
    """Keep what the stack made to start (~250,000 objects: moto's models, boto3, the template,
    the functions' code) out of the garbage collector's full passes, which walk every object:
    they stalled this process 250-300 ms at a time, and every WebSocket client with it (at 1,000
    connections a pass came every 10-60 s; issue 16). Those objects live as long as the stack;
    what is made afterwards is collected as before."""
    gc.collect()
    gc.freeze()


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
        # Every table and parameter write is journaled before the emulator answers (journal.py).
        self.journal = Journal(self.data_dir / "emulator-journal")
        not_journaled = frozenset(
            self.template.physical_name(lid) for lid in NOT_SAVED if lid in self.template.resources
        )
        # The emulator listens on 127.0.0.1 whatever --host says: only this machine's stack talks to it.
        self.emulator = Emulator(
            options.endpoint,
            template=self.template,
            service_endpoints=options.service_endpoints,
            log=_log,
            middleware=lambda app: JournalMiddleware(app, self.journal, not_journaled),
        )
        self.public_host = public_host(options.host)  # what URLs handed to partners carry
        self._started = time.monotonic()
        self.names: dict[str, str] = {}
        self.kinds: dict[str, str] = {}
        self._stop = threading.Event()
        self._saving = threading.Lock()
        self._servers: list[_Server] = []

    @property
    def api_url(self) -> str:
        return f"http://{url_host(self.public_host)}:{self.options.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{url_host(self.public_host)}:{self.options.ws_port}"

    @property
    def snapshot_dir(self) -> Path:
        return self.data_dir / "emulator-snapshot"

    def runtime_file(self) -> Path:
        return self.data_dir / "local-stack.json"

    # -- start-up ------------------------------------------------------------------------
    def prepare(self) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        make_private(self.data_dir)
        self.emulator.start()
        _log(f"data services: {self.emulator.describe()}")
        self.names = create_resources(self.emulator, self.template)
        self._prepare_cloudwatch()
        self.kinds = {
            k: ("bucket" if self.template.resources[k]["Type"] == "AWS::S3::Bucket" else "table")
            for k in self.names
        }
        if self._embedded_names():  # a service the user runs keeps its own data
            self._restore()
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
        from tradowix_bot.server import metrics

        from .cloudwatch import LocalCloudWatch

        self.cloudwatch = LocalCloudWatch(self.emulator, self.template, log=_log)
        self.cloudwatch.create_alarms()
        metrics.add_sink(self.cloudwatch.emf)
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"  # stored above, not printed on the console

    def _restore(self) -> None:
        """The last snapshot, then the journal after it; a damaged state is one line and no start."""
        try:
            restored = open_state(
                self.emulator, self._embedded_names(), self.kinds, self.snapshot_dir, self.journal
            )
        except StateFileError as exc:
            raise SystemExit(f"error: {exc}") from None
        if restored.records or restored.replayed:
            _log(
                f"restored {restored.records} records from {self.snapshot_dir}"
                + (f" and {restored.replayed} writes from its journal" if restored.replayed else "")
            )
        if restored.torn:
            _log("dropped a half-written last journal entry (a write the emulator never answered)")

    def _prepare_parameters(self) -> None:
        from .parameters import ensure_admin_secret

        admin_parameter = os.environ.get("ADMIN_SECRET_PARAMETER")
        if admin_parameter:
            generated = ensure_admin_secret(self.emulator, admin_parameter)
            if generated:
                _log(f"admin secret (shown once; store it now, it is kept only as a hash): {generated}")

    def _overrides(self) -> dict[str, str]:
        overrides = {"WS_URL": self.ws_url}  # what /api/live/status hands partners
        if os.environ.get("KEY_CACHE_SECONDS"):  # the user's (or tests') bound wins over the template default
            overrides["KEY_CACHE_SECONDS"] = os.environ["KEY_CACHE_SECONDS"]
        ws_api = self.template.websocket_api()
        if ws_api is not None:  # the @connections API of our WebSocket gateway (same port)
            # The collector on this machine posts here: loopback reaches any listening address.
            local = "127.0.0.1" if self.options.host in WILDCARD_HOSTS else url_host(self.options.host)
            overrides["WS_MANAGEMENT_ENDPOINT"] = f"http://{local}:{self.options.ws_port}/{ws_api.stage}"
        return overrides

    def _import_and_seed(self) -> None:
        from tradowix_bot.server import aws
        from tradowix_bot.server.importer import import_dir
        from tradowix_bot.server.store import CandleStore

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
            "ws_url": None if self.options.admin_only else self.ws_url,
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
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the emulator's credentials
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(info, indent=2))
        tmp.replace(self.runtime_file())

    # -- running -------------------------------------------------------------------------
    def _snapshot(self) -> None:
        if self._embedded_names():
            with self._saving:  # the periodic save and the one at shutdown never overlap
                save(self.emulator, self._embedded_names(), self.kinds, self.snapshot_dir, self.journal)

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
        freeze_startup_objects()
        self._write_runtime_file()
        for line in self.banner():
            _log(line)
        if self.options.open_path is not None:
            import webbrowser

            webbrowser.open(self.api_url + self.options.open_path)
        await asyncio.gather(*tasks)

    def banner(self) -> list[str]:
        """What the stack serves, and only that, with commands that work from this folder."""
        cli = cli_command()
        elapsed = time.monotonic() - self._started
        if self.options.admin_only:
            return [
                f"ready in {elapsed:.0f} s (--admin-only: the admin panel and its API, nothing else)",
                f"admin panel: {self.api_url}/admin",
                f"locked out after wrong secrets? {cli} admin unlock   ·   Ctrl-C stops",
            ]
        return [
            f"ready in {elapsed:.0f} s: partner API {self.api_url}  "
            f"(try: curl '{self.api_url}/api/candles?symbol=BTCUSD-OTC&limit=3')",
            f"live WebSocket: {self.ws_url}   ·   chart: {self.api_url}/   ·   admin panel: {self.api_url}/admin",
            f"create a key: {cli} keys create --name partner1   ·   Ctrl-C stops (state kept in {self.data_dir})",
        ]

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
        from tradowix_bot.server.admin import SessionTokenStore
        from tradowix_bot.server.state import StateStore

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
        self._started = time.monotonic()
        os.umask(0o077)  # whatever the stack and its collector write is the owner's alone
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
                self.journal.close()
                self.emulator.stop()
                _log("stopped")
        return 0


def main(options: StackOptions) -> int:
    from tradowix_bot.server.aws import unavailable_errors

    try:
        return LocalStack(options).run()
    except KeyboardInterrupt:
        return 130
    except unavailable_errors() as exc:  # e.g. --endpoint names a service that is not running
        where = options.endpoint or os.environ.get("AWS_ENDPOINT_URL") or "the data services"
        print(
            f"error: cannot reach {where} ({str(exc).splitlines()[0]}); start it, or leave out "
            "--endpoint / AWS_ENDPOINT_URL to use the embedded emulator",
            file=sys.stderr,
        )
        return 1
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 1
        raise
