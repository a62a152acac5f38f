"""Given subscribers in the connections table (in-process moto), when the collector publishes
1m bar updates, then each subscriber gets the bar of its own timeframe, throttled, with the
closing update marked closed; a gone client is removed and nobody else is affected."""

from __future__ import annotations

import json

import pytest

T0 = 1_795_639_800  # a 5-minute boundary


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


class Poster:
    """Stands in for the @connections API; ids in `gone` answer 410."""

    def __init__(self):
        self.sent: list[tuple[str, dict]] = []
        self.deleted: list[str] = []
        self.gone: set[str] = set()

    def post(self, cid, msg):
        if cid in self.gone:
            return "gone"
        self.sent.append((cid, msg if isinstance(msg, dict) else json.loads(msg)))
        return "ok"

    def post_many(self, posts):
        return [self.post(c, m) for c, m in posts]

    def delete(self, cid):
        self.deleted.append(cid)
        return "ok"

    def close(self):
        pass

    def to(self, cid, kind="bar") -> list[dict]:
        return [m for c, m in self.sent if c == cid and m["type"] == kind]


@pytest.fixture
def live(aws_env):
    from tradowix_bot.keys import KeyRegistry
    from tradowix_bot.live_connections import ConnectionStore
    from tradowix_bot.live_fanout import LivePublisher
    from tradowix_bot.store import CandleStore

    clock = Clock(T0 + 1)
    connections = ConnectionStore(aws_env["ConnectionsTable"], clock=clock)
    keys = KeyRegistry(aws_env["KeysTable"], cache_seconds=0)
    poster = Poster()
    store = CandleStore(aws_env["CandlesBucket"])
    publisher = LivePublisher(connections, poster, keys, store=store, throttle_seconds=2, clock=clock)

    def subscribe(cid, timeframe, symbol="BTCUSD-OTC", key_id=None):
        conn = connections.get(cid) or connections.add_connection(cid, key_id)
        connections.subscribe(conn, symbol, timeframe)

    return publisher, poster, clock, subscribe, connections, keys, store


def minute(i: int, close: float, high: float | None = None) -> tuple:
    return (T0 + 60 * i, 100.0, high or max(100.0, close), min(99.0, close), close)


def test_each_subscriber_gets_its_timeframe_and_the_closing_update(live):
    publisher, poster, clock, subscribe, *_ = live
    subscribe("a1m", 60)
    subscribe("b5m", 300)
    for i in range(5):  # five 1m bars: a forming update then the close of each
        clock.now = T0 + 60 * i + 30
        publisher.on_bar("BTCUSD-OTC", minute(i, 100.0 + i), False)
        clock.now = T0 + 60 * i + 60
        publisher.on_bar("BTCUSD-OTC", minute(i, 100.5 + i, high=110.0 + i), True)
    five = poster.to("b5m")
    assert five[-1]["closed"] is True and [m["closed"] for m in five[:-1]] == [False] * (len(five) - 1)
    assert five[-1]["candle"] == {"time": T0, "open": 100.0, "high": 114.0, "low": 99.0, "close": 104.5}
    assert poster.to("b5m", "timing")[-1]["timing"]["bar_open"] == T0 + 300  # countdown to the next bar
    one = poster.to("a1m")
    assert [m["candle"]["time"] for m in one if m["closed"]] == [T0 + 60 * i for i in range(5)]
    assert len(poster.to("a1m", "timing")) == 5  # timing once per bar


def test_forming_updates_are_throttled_per_subscription_and_the_latest_is_delivered(live):
    publisher, poster, clock, subscribe, *_ = live
    subscribe("c", 300)
    for step in range(10):  # ten updates within one second
        clock.now = T0 + 1 + step * 0.1
        publisher.on_bar("BTCUSD-OTC", minute(0, 100.0 + step), False)
    assert [m["candle"]["close"] for m in poster.to("c")] == [100.0]
    clock.now = T0 + 3.5  # the window opened: the pending (latest) update goes out
    publisher.tick()
    assert [m["candle"]["close"] for m in poster.to("c")] == [100.0, 109.0]
    publisher.tick()  # nothing new: nothing sent
    assert len(poster.to("c")) == 2


def test_a_gone_connection_is_removed_and_the_others_still_receive(live):
    publisher, poster, clock, subscribe, connections, *_ = live
    for cid in ("ok1", "ghost", "ok2"):
        subscribe(cid, 60)
    poster.gone.add("ghost")  # the client vanished without $disconnect
    publisher.on_bar("BTCUSD-OTC", minute(0, 101.0), True)
    assert len(poster.to("ok1")) == 1 and len(poster.to("ok2")) == 1
    assert connections.get("ghost") is None
    assert {s.connection_id for s in connections.subscribers("BTCUSD-OTC")} == {"ok1", "ok2"}
    assert publisher.stats.gone == 1


def test_a_bar_whose_last_minute_never_came_is_closed_when_the_next_starts(live):
    publisher, poster, clock, subscribe, *_ = live
    subscribe("d", 300)
    publisher.on_bar("BTCUSD-OTC", minute(2, 101.0), True)  # minutes 3 and 4 missing
    clock.now = T0 + 301
    publisher.on_bar("BTCUSD-OTC", minute(5, 102.0), False)
    closes = [m for m in poster.to("d") if m["closed"]]
    assert [m["candle"]["time"] for m in closes] == [T0]
    assert poster.to("d")[-1]["candle"]["time"] == T0 + 300  # the new bar's first update: at once


def test_the_next_bars_first_update_follows_the_close_at_once(live):
    """Issue 14: the new candle appeared ~3 s after its minute opened (the close used up the
    throttle window), while the chart's countdown had already restarted."""
    publisher, poster, clock, subscribe, *_ = live
    subscribe("e", 60)
    # given a subscriber that just got a forming update of minute 0
    clock.now = T0 + 59.5
    publisher.on_bar("BTCUSD-OTC", minute(0, 100.5), False)
    # when minute 0 closes and the first tick of minute 1 arrives in the same instant
    clock.now = T0 + 60.2
    publisher.on_bar("BTCUSD-OTC", minute(0, 100.7), True)
    publisher.on_bar("BTCUSD-OTC", minute(1, 100.9), False)
    # then the subscriber has the close, then minute 1's first update, with no tick() needed
    bars = poster.to("e")
    assert [(m["candle"]["time"], m["closed"]) for m in bars[-2:]] == [(T0, True), (T0 + 60, False)]
    # and later updates of minute 1 are throttled again (at most one every 2 s)
    clock.now = T0 + 61.0
    publisher.on_bar("BTCUSD-OTC", minute(1, 101.2), False)
    assert len(poster.to("e")) == len(bars)


def test_starting_mid_bucket_backfills_the_bucket_from_the_store(live):
    publisher, poster, clock, subscribe, _, _, store = live
    store.write("BTCUSD-OTC", [(T0, 90.0, 120.0, 80.0, 95.0), (T0 + 60, 95.0, 96.0, 94.0, 95.5)])
    subscribe("e", 300)
    clock.now = T0 + 150
    publisher.on_bar("BTCUSD-OTC", minute(2, 101.0), False)
    candle = poster.to("e")[0]["candle"]
    assert (candle["open"], candle["high"], candle["low"]) == (90.0, 120.0, 80.0)


def test_a_disabled_or_deleted_key_loses_its_connections(live):
    publisher, poster, clock, subscribe, connections, keys, _ = live
    kept, _ = keys.create("kept")
    dropped, _ = keys.create("dropped")
    subscribe("k1", 60, key_id=kept.key_id)
    subscribe("k2", 60, key_id=dropped.key_id)
    keys.set_enabled(dropped.key_id, False)
    publisher.revalidate()
    assert poster.deleted == ["k2"] and poster.to("k2", "error")[0]["error"] == "key_disabled"
    assert connections.get("k2") is None and connections.get("k1") is not None
    keys.delete(kept.key_id)
    publisher.revalidate()
    assert poster.deleted == ["k2", "k1"]


def test_idle_connections_get_keepalive_traffic(live):
    publisher, poster, clock, subscribe, *_ = live
    subscribe("idle", 3600)
    publisher.revalidate()  # first sight
    clock.now += publisher.keepalive_seconds - 1
    publisher.revalidate()
    assert [c for c, _ in poster.sent] == []  # not idle long enough yet
    clock.now += 2
    publisher.revalidate()
    assert [(c, m["type"]) for c, m in poster.sent] == [("idle", "status")]
    assert publisher.keepalive_seconds < 600  # API Gateway's idle timeout
