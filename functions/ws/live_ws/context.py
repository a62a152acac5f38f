"""The WebSocket function's parts, one `Services` per container, built lazily on first use
(nothing touches AWS at import)."""

from __future__ import annotations

from tradowix_bot.server.services import Services, live_settings

services = Services(live_settings, metrics_service="ws")
reset = services.reset
