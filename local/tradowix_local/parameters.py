"""SSM parameters of the local stack: the admin secret and the Tradowix session token.

CloudFormation cannot create SecureStrings, so on AWS the owner puts the admin secret; here
the stack generates one on first start (printed once, stored only as a hash) unless the
owner sets TRADOWIX_ADMIN_SECRET. moto keeps parameters in memory and the emulator
snapshot holds buckets and tables only, so these few parameters are saved beside it
(readable by the owner only).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from tradowix_bot.admin import hash_secret

from .emulator import Emulator

ADMIN_SECRET_ENV = "TRADOWIX_ADMIN_SECRET"
FILE_NAME = "ssm-parameters.json"


def parameter_names(environment: dict[str, str]) -> dict[str, str]:
    """The SSM parameter names a function's environment points at (ADMIN_SECRET_PARAMETER, …)."""
    return {k: v for k, v in environment.items() if k.endswith("_PARAMETER") and v.startswith("/")}


def restore_parameters(emulator: Emulator, data_dir: Path) -> int:
    path = data_dir / FILE_NAME
    if not path.exists():
        return 0
    ssm = emulator.client("ssm")
    saved = json.loads(path.read_text())
    for name, value in saved.items():
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
    return len(saved)


def save_parameters(emulator: Emulator, names: list[str], data_dir: Path) -> None:
    ssm = emulator.client("ssm")
    saved = {}
    for name in names:
        try:
            saved[name] = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            continue
    path = data_dir / FILE_NAME
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(json.dumps(saved))
    tmp.replace(path)


def ensure_admin_secret(emulator: Emulator, parameter_name: str) -> str | None:
    """Make sure the admin secret parameter exists. Returns the secret when it was generated
    now (to print once); None when it already existed or the owner set it via the env."""
    ssm = emulator.client("ssm")
    chosen = os.environ.get(ADMIN_SECRET_ENV)
    if chosen:
        ssm.put_parameter(Name=parameter_name, Value=hash_secret(chosen), Type="SecureString", Overwrite=True)
        return None
    try:
        ssm.get_parameter(Name=parameter_name)
        return None
    except ssm.exceptions.ParameterNotFound:
        pass
    secret = secrets.token_urlsafe(18)
    ssm.put_parameter(Name=parameter_name, Value=hash_secret(secret), Type="SecureString")
    return secret
