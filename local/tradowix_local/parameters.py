"""SSM parameters of the local stack: the admin secret and the Tradowix session token.

CloudFormation cannot create SecureStrings, so on AWS the owner puts the admin secret; here
the stack generates one on first start (printed once, stored only as a hash) unless the
owner sets TRADOWIX_ADMIN_SECRET. Parameters are saved with the emulator's snapshot and
journal like tables (snapshot.py, journal.py).
"""

from __future__ import annotations

import os
import secrets

from tradowix_bot.server.admin import hash_secret

from .emulator import Emulator

ADMIN_SECRET_ENV = "TRADOWIX_ADMIN_SECRET"


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
