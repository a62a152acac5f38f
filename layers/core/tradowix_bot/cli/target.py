"""Which deployment a CLI command talks to.

In order: `--stack NAME` (or TRADOWIX_STACK) reads a deployed stack's outputs from
CloudFormation; explicit KEYS_TABLE/STATE_TABLE/CANDLES_BUCKET in the environment; else the
local stack started from this folder, found through its runtime file while it runs.

A local stack's emulator accepts only its own credentials: resolving it hands its endpoint and
credentials to this process's AWS clients (`aws.use_endpoint`), never to the environment, so
neither the user's own AWS settings nor child processes see or mix with them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


class NoTarget(Exception):
    pass


@dataclass(frozen=True)
class Target:
    description: str
    keys_table: str
    state_table: str
    candles_bucket: str
    api_url: str | None = None

    def services(self, **overrides):
        """The server's parts on this deployment (server/services.py), from its names and the
        defaults of every other setting; `overrides` replace settings (e.g. day_cache_entries)."""
        from dataclasses import replace

        from tradowix_bot.server.config import Settings
        from tradowix_bot.server.services import Services

        names = {
            "CANDLES_BUCKET": self.candles_bucket,
            "KEYS_TABLE": self.keys_table,
            "STATE_TABLE": self.state_table,
        }
        return Services(lambda: replace(Settings.from_env(environ=names), **overrides))


def data_dir() -> Path:
    return Path(os.environ.get("TRADOWIX_DATA_DIR", "data")).resolve()


def runtime_file(directory: Path | None = None) -> Path:
    return (directory or data_dir()) / "local-stack.json"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _from_stack(name: str) -> Target:
    from tradowix_bot.server import aws

    try:
        stacks = aws.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except Exception as exc:  # noqa: BLE001 - reported as one clear line
        raise NoTarget(f"cannot read stack {name!r}: {exc}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    try:
        return Target(
            f"stack {name}",
            outputs["KeysTableName"],
            outputs["StateTableName"],
            outputs["CandlesBucketName"],
            outputs.get("ApiUrl"),
        )
    except KeyError as exc:
        raise NoTarget(f"stack {name!r} has no output {exc}; is it a Tradowix stack?") from None


def _from_local(directory: Path | None = None) -> Target:
    path = runtime_file(directory)
    if not path.exists():
        raise NoTarget(
            "no stack to talk to: start the local stack in this folder "
            "(python -m tradowix_bot.cli chart) or pass --stack NAME for a deployed one"
        )
    try:
        info = json.loads(path.read_text())
        pid = int(info["pid"])
        target = Target(
            f"local stack at {info['api_url']}",
            info["keys_table"],
            info["state_table"],
            info["candles_bucket"],
            info["api_url"],
        )
        endpoint, aws_env = str(info["endpoint_url"]), dict(info.get("aws_env", {}))
    except PermissionError:
        raise NoTarget(f"{path} is not readable by you: it belongs to the stack's owner") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise NoTarget(
            f"{path} is half-written or damaged; if the local stack is not running, delete it and start it again"
        ) from None
    if not _pid_alive(pid):
        raise NoTarget(f"the local stack recorded in {path} is not running; start it again")
    from tradowix_bot.server import aws

    aws.use_endpoint(aws.Endpoint.from_variables(endpoint, aws_env))
    return target


def resolve(stack: str | None = None, directory: Path | None = None) -> Target:
    stack = stack or os.environ.get("TRADOWIX_STACK")
    if stack:
        return _from_stack(stack)
    if os.environ.get("KEYS_TABLE"):
        from tradowix_bot.server.config import Settings, SettingsError

        try:  # all three names or none: never a default bucket or table
            settings = Settings.from_env()
        except SettingsError as exc:
            raise NoTarget(str(exc)) from None
        return Target("environment", settings.keys_table, settings.state_table, settings.candles_bucket)
    return _from_local(directory.resolve() if directory else None)
