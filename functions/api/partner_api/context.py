"""The API and admin functions' parts, one `Services` per container: a warm container reuses
clients, caches and the key snapshot across invocations. `warm()` builds them during Lambda's
init (see Services.warm); nothing calls AWS at import."""

from __future__ import annotations

from tradowix_bot.server.services import Services

# How long the API trusts its listing of a symbol's day objects (today's is re-validated on
# every request with a conditional GET): a past day rewritten by gap repair shows within this.
DAY_INDEX_SECONDS = 60

services = Services(day_index_seconds=DAY_INDEX_SECONDS)
warm = services.warm
reset = services.reset
