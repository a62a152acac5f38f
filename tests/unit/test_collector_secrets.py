"""Given the owner's session token in the collector, when the upstream's own text quotes it
(a bare token, no `token=` around it), then it reaches no partner, no stored record and no
log line: partners see a code. And a key restricted to some symbols sees only those symbols
in /api/live/status."""

from __future__ import annotations

import asyncio
import json

from collector_harness import partner_get
from tradowix_bot.collector import Collector
from tradowix_bot.collector.tradowix import TradowixSource
from tradowix_bot.server.keys import KeyRegistry
from tradowix_bot.server.state import StateStore
from tradowix_bot.server.store import CandleStore

TOKEN = "good-token"


def test_an_upstream_error_quoting_the_bare_session_token_reaches_no_partner_record_or_log(
    api, upstream, capsys, caplog
):
    # given an upstream that, once linked, sends an error whose text quotes the bare token
    upstream.extra_frames = [
        json.dumps({"type": "error", "message": f"session {TOKEN} expires in 5 minutes"})
    ]
    source = TradowixSource(upstream.url, TOKEN, upstream.clock, ping_interval=1.0)
    state = StateStore(api["StateTable"])
    collector = Collector(
        source,
        CandleStore(api["CandlesBucket"]),
        state,
        clock=upstream.clock,
        symbols=["EURUSD-OTC"],
        backfill_days=10 / 1440,
        status_interval=0.3,
    )
    seen = {}

    async def scenario():
        stop = asyncio.Event()
        task = asyncio.create_task(collector.run(stop))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while (state.upstream_status() or {}).get("error") != "upstream_error":
            assert loop.time() < deadline, state.upstream_status()
            await asyncio.sleep(0.05)
        # when a partner (no key exists: open mode) and the owner read the status
        seen["partner"] = await asyncio.to_thread(partner_get, "/api/live/status")  # Mangum runs its own loop
        seen["record"] = state.upstream_status()
        stop.set()
        await task

    asyncio.run(scenario())
    # then the partner sees a code, and neither of them the token
    partner = seen["partner"]
    assert partner.status == 200 and partner.json()["upstream"]["last_error"] == "upstream_error"
    assert TOKEN not in partner.body.decode()
    assert "upstream error: session *** expires" in seen["record"]["last_error"]  # the owner's detail
    assert TOKEN not in json.dumps(seen["record"])
    # and no log line carries it
    assert TOKEN not in capsys.readouterr().out + "".join(r.getMessage() for r in caplog.records)


def test_a_key_restricted_to_some_symbols_sees_only_those_in_live_status(api):
    # given collectors reporting three symbols, and a key restricted to one of them
    state = StateStore(api["StateTable"])
    import time

    now = time.time()
    for owner, symbols in (("a", ["BTCUSD-OTC", "ETHUSD-OTC"]), ("b", ["EURUSD-OTC"])):
        record = {"source": "tradowix", "connected": True, "authenticated": True, "error": None}
        record["symbols"] = {s: {"state": "live", "last_tick_age": 0.5, "error": None} for s in symbols}
        state.write_collector_status(owner, record, now, 15)
    _, raw = KeyRegistry(api["KeysTable"]).create("partner", symbols=["BTCUSD-OTC"])
    # when that key reads the live status
    answer = partner_get("/api/live/status", headers={"X-Api-Key": raw})
    # then it sees only its symbol
    assert answer.status == 200
    assert list(answer.json()["upstream"]["symbols"]) == ["BTCUSD-OTC"]
    assert "ETHUSD-OTC" not in answer.body.decode() and "EURUSD-OTC" not in answer.body.decode()
