"""GET /api/admin/health: the owner's health view (tradowix_bot.server.health; shape in
docs/observability.md). Admin session required, like every /api/admin read."""

from __future__ import annotations

import functools
import os

from fastapi import APIRouter
from tradowix_bot.server import aws, health

from . import context
from .admin_routes import NO_STORE, Reader
from .responses import JSONBody

router = APIRouter(prefix="/api/admin", include_in_schema=False)


@functools.cache
def _alarm_prefix() -> str:
    return os.environ.get("ALARM_NAME_PREFIX", "")


@router.get("/health")
def health_view(_: Reader):
    report = health.report(aws.client("cloudwatch"), context.services.state(), alarm_prefix=_alarm_prefix())
    return JSONBody(report, headers=NO_STORE)
