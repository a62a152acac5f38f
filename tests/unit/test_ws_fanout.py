"""Given subscribers in the connections table (in-process moto), when the collector publishes
1m bar updates, then each subscriber gets the bar of its own timeframe, throttled, with the
closing update marked closed; a gone client is removed and nobody else is affected."""

from __future__ import annotations

import json
import threading

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


class WatchedEvent(threading.Event):
    """The publisher's "not posting" event, set, recording each wait on it: the timeout, and
    whether a wait found it clear (a batch of posts in flight)."""

    def __init__(self):
        super().__init__()
        self.set()
        self.timeouts: list[float | None] = []
        self.waited_while_clear = threading.Event()

    def wait(self, timeout=None):
        if not self.is_set():
            self.waited_while_clear.set()
        self.timeouts.append(timeout)
        return super().wait(timeout)


@pytest.fixture
def live(aws_env):
    from tradowix_bot.server.keys import KeyRegistry
    from tradowix_bot.server.live_connections import ConnectionStore
    from tradowix_bot.server.live_fanout import LivePublisher
    from tradowix_bot.server.store import CandleStore

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


def test_a_bar_whose_last_minute_never_closed_is_closed_before_the_next_one_closes(live):
    publisher, poster, clock, subscribe, *_ = live
    # given a 5m subscriber and a bar whose minutes 3 and 4 never came
    subscribe("d", 300)
    publisher.on_bar("BTCUSD-OTC", minute(2, 101.0), True)
    # when the next bar starts, the previous one is not closed yet (a late close may still come)
    clock.now = T0 + 301
    publisher.on_bar("BTCUSD-OTC", minute(5, 102.0), False)
    assert [m for m in poster.to("d") if m["closed"]] == []
    clock.now += 2.5  # the new bar's first update waits for the throttle window
    publisher.tick()
    assert poster.to("d")[-1]["candle"]["time"] == T0 + 300
    # when the next bar closes, then the previous one is closed first, as it stands, in time order
    clock.now = T0 + 601
    publisher.on_bar("BTCUSD-OTC", minute(9, 103.0), True)
    closes = [m for m in poster.to("d") if m["closed"]]
    assert [(m["candle"]["time"], m["candle"]["close"]) for m in closes] == [(T0, 101.0), (T0 + 300, 103.0)]


def test_a_partial_minute_is_closed_once_with_the_bar_history_repaired(live):
    publisher, poster, clock, subscribe, *_ = live
    # given a subscriber who saw minute 0 forming from part of its ticks (the link started in it)
    subscribe("e", 60)
    publisher.on_bar("BTCUSD-OTC", minute(0, 100.5), False)
    # when the next minute starts before the collector closes minute 0 (it waits for history) ...
    clock.now = T0 + 61
    publisher.on_bar("BTCUSD-OTC", minute(1, 101.0), False)
    # ... and then closes it late, with the whole bar from history
    publisher.on_bar("BTCUSD-OTC", minute(0, 99.5), True)
    clock.now = T0 + 121
    publisher.on_bar("BTCUSD-OTC", minute(1, 102.0), True)
    # then minute 0 is closed once, with history's bar (never the partial one), before minute 1
    closes = [m for m in poster.to("e") if m["closed"]]
    assert [(m["candle"]["time"], m["candle"]["close"]) for m in closes] == [(T0, 99.5), (T0 + 60, 102.0)]


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


# -- faults (issues 10, 11, 15, 16) ------------------------------------------------------------------
def subscribe_like_a_partner(aws_env, poster, clock, cid, symbol="BTCUSD-OTC", timeframe=60, key=None):
    """Through the WebSocket handler's domain code: history first, then the subscription."""
    from tradowix_bot.server.keys import KeyRegistry
    from tradowix_bot.server.live_connections import ConnectionStore
    from tradowix_bot.server.live_socket import LiveSocket
    from tradowix_bot.server.market import MarketData
    from tradowix_bot.server.state import StateStore
    from tradowix_bot.server.store import CandleStore

    connections = ConnectionStore(aws_env["ConnectionsTable"], clock=clock)
    market = MarketData(CandleStore(aws_env["CandlesBucket"]), StateStore(aws_env["StateTable"]), clock=clock)
    socket = LiveSocket(
        KeyRegistry(aws_env["KeysTable"], cache_seconds=0), connections, market, poster, clock=clock
    )
    socket.connect(cid, key)
    socket.handle(cid, json.dumps({"type": "subscribe", "symbol": symbol, "timeframe": timeframe}))
    return [m for c, m in poster.sent if c == cid and m["type"] == "history"][-1]


def test_a_new_subscriber_after_everyone_left_mid_bar_gets_no_stale_bar(live, aws_env):
    publisher, poster, clock, subscribe, connections, _, store = live
    # given a subscriber that leaves in the middle of minute 0 (after a forming update at 100.0)
    subscribe("early", 60)
    clock.now = T0 + 20
    publisher.on_bar("BTCUSD-OTC", minute(0, 100.0), False)
    connections.remove_connection("early")
    clock.now = T0 + 25
    publisher.refresh_subscribers()
    # and minutes 0..3 go by with nobody subscribed (the collector closes and stores them)
    for i in range(4):
        clock.now = T0 + 60 * i + 59
        publisher.on_bar("BTCUSD-OTC", minute(i, 101.0 + i), False)
        clock.now = T0 + 60 * (i + 1)
        publisher.on_bar("BTCUSD-OTC", minute(i, 101.5 + i), True)
        store.write("BTCUSD-OTC", [minute(i, 101.5 + i)])
    # when a partner subscribes in minute 4, and the publisher picks it up
    clock.now = T0 + 240 + 10
    history = subscribe_like_a_partner(aws_env, poster, clock, "late")
    publisher.refresh_subscribers()
    publisher.tick()
    for i in (4, 5):
        clock.now = T0 + 60 * i + 30
        publisher.on_bar("BTCUSD-OTC", minute(i, 105.0 + i), False)
        clock.now = T0 + 60 * (i + 1)
        publisher.on_bar("BTCUSD-OTC", minute(i, 105.5 + i), True)
        publisher.tick()
    # then every bar it gets is at or after its history's last bar, each close once, in order
    last = history["candles"][-1]["time"]
    bars = poster.to("late")
    assert bars and all(b["candle"]["time"] >= last for b in bars)
    closes = [b["candle"]["time"] for b in bars if b["closed"]]
    assert closes == [T0 + 240, T0 + 300]
    assert [b["candle"]["close"] for b in bars if b["closed"]] == [109.5, 110.5]


def test_a_subscriber_seen_after_its_bar_closed_still_gets_that_close_once(live, aws_env):
    publisher, poster, clock, subscribe, _, _, store = live
    # given minute 0 forming when a partner subscribes (its history ends before minute 0)
    store.write("BTCUSD-OTC", [minute(-1, 99.0)])
    subscribe("other", 60)
    clock.now = T0 + 30
    publisher.on_bar("BTCUSD-OTC", minute(0, 100.0), False)
    history = subscribe_like_a_partner(aws_env, poster, clock, "new")
    assert history["candles"][-1]["time"] == T0 - 60
    # when minute 0 closes before the publisher has seen the new subscription
    clock.now = T0 + 60
    publisher.on_bar("BTCUSD-OTC", minute(0, 100.5), True)
    publisher.refresh_subscribers()
    publisher.tick()
    publisher.tick()
    # then the new subscription still gets minute 0's close, once, then the timing of minute 1
    assert [(m["type"], m.get("closed")) for c, m in poster.sent if c == "new"][-2:] == [
        ("bar", True),
        ("timing", None),
    ]
    assert [b["candle"]["time"] for b in poster.to("new") if b["closed"]] == [T0]


def test_a_key_restricted_while_subscribed_ends_that_subscription_only(live):
    publisher, poster, clock, subscribe, connections, keys, _ = live
    # given a key streaming two symbols on one connection
    record, _ = keys.create("partner")
    subscribe("c1", 60, "BTCUSD-OTC", key_id=record.key_id)
    subscribe("c1", 60, "ETHUSD-OTC", key_id=record.key_id)
    publisher.on_bar("BTCUSD-OTC", minute(0, 101.0), True)
    publisher.on_bar("ETHUSD-OTC", minute(0, 3001.0), True)
    # when the owner restricts the key to ETHUSD-OTC, and the periodic key check runs
    keys.restrict(record.key_id, ["ETHUSD-OTC"])
    publisher.revalidate()
    # then the BTCUSD-OTC subscription ends with symbol_forbidden; the connection stays
    (error,) = poster.to("c1", "error")
    assert (error["error"], error["symbol"], error["timeframe"]) == ("symbol_forbidden", "BTCUSD-OTC", 60)
    assert poster.deleted == [] and connections.get("c1") is not None
    assert [s.symbol for s in connections.subscriptions("c1")] == ["ETHUSD-OTC"]
    # and no BTCUSD-OTC bar reaches it any more, ETHUSD-OTC bars do
    before = len(poster.to("c1"))
    clock.now = T0 + 120
    publisher.on_bar("BTCUSD-OTC", minute(1, 102.0), True)
    publisher.on_bar("ETHUSD-OTC", minute(1, 3002.0), True)
    assert [m["symbol"] for m in poster.to("c1")[before:]] == ["ETHUSD-OTC"]


def test_one_bar_for_many_subscribers_is_encoded_once(live, monkeypatch):
    from tradowix_bot.server import live_fanout

    publisher, poster, clock, subscribe, *_ = live
    for i in range(30):
        subscribe(f"s{i}", 60)
    encoded = []
    real = live_fanout.encode
    monkeypatch.setattr(live_fanout, "encode", lambda msg: encoded.append(msg) or real(msg))
    # when a closing bar goes to 30 subscribers
    publisher.on_bar("BTCUSD-OTC", minute(0, 101.0), True)
    # then the bar and the timing message were each encoded once, and everyone got both
    assert len(poster.sent) == 60
    assert sorted(m["type"] for m in encoded) == ["bar", "timing"]


def test_a_hanging_post_holds_up_neither_the_collector_nor_the_subscriber_refresh(live):

    publisher, poster, clock, subscribe, *_ = live
    subscribe("slow", 60)
    publisher.on_bar("BTCUSD-OTC", minute(0, 100.0), False)  # the subscriber is known
    entered, release = threading.Event(), threading.Event()
    plain_post_many = poster.post_many

    def hanging_post_many(posts):
        entered.set()
        release.wait(30)
        return plain_post_many(posts)

    poster.post_many = hanging_post_many
    publisher.start()
    try:
        # given a post to a client that hangs
        collector = threading.Thread(target=publisher.on_bar, args=("BTCUSD-OTC", minute(0, 101.0), True))
        collector.start()
        assert entered.wait(10)
        # when the collector hands over the next bar and the subscriber refresh runs meanwhile
        refreshed = threading.Event()
        threading.Thread(
            target=lambda: (
                publisher.refresh_subscribers(),
                publisher.known_subscriptions(),
                refreshed.set(),
            ),
            daemon=True,
        ).start()
        collector.join(10)
        # then neither waited for the hanging post
        assert not collector.is_alive() and refreshed.wait(10)
    finally:
        release.set()
        publisher.stop()


def test_subscriber_changes_cost_one_small_read_per_refresh_not_a_query_per_symbol(live):
    publisher, poster, clock, subscribe, connections, *_ = live
    symbols = ["BTCUSD-OTC", "ETHUSD-OTC", "EURUSD-OTC"]
    for n, symbol in enumerate(symbols):
        subscribe(f"p{n}", 60, symbol)
        publisher.on_bar(symbol, minute(0, 100.0), False)
    calls = {"subscribers": [], "versions": 0}
    plain_subscribers, plain_versions = connections.subscribers, connections.subscriber_versions
    connections.subscribers = lambda symbol: calls["subscribers"].append(symbol) or plain_subscribers(symbol)

    def versions():
        calls["versions"] += 1
        return plain_versions()

    connections.subscriber_versions = versions
    # when the publisher refreshes every second for a minute with no subscriber change
    for _ in range(60):
        clock.now += 1
        publisher.refresh_subscribers()
    # then it read one small item set per refresh and no symbol's subscriber list
    assert calls == {"subscribers": [], "versions": 60}
    # when a partner subscribes to ETHUSD-OTC
    subscribe("p-new", 60, "ETHUSD-OTC")
    for _ in range(5):
        clock.now += 1
        publisher.refresh_subscribers()
    # then only that symbol's list was read (again once the index settled) and its bars reach them
    assert set(calls["subscribers"]) == {"ETHUSD-OTC"} and len(calls["subscribers"]) <= 2
    clock.now = T0 + 60
    publisher.on_bar("ETHUSD-OTC", minute(0, 100.5), True)
    assert [m["closed"] for m in poster.to("p-new")] == [True]


def test_partners_who_come_and_go_leave_nothing_behind_in_the_publisher(live):
    publisher, poster, clock, subscribe, connections, *_ = live
    # given 10 rounds of 20 partners who subscribe, get bars, and disconnect ($disconnect)
    for cycle in range(10):
        ids = [f"c{cycle}-{i}" for i in range(20)]
        for cid in ids:
            subscribe(cid, 60 * (1 + cycle % 3))
        clock.now = T0 + 60 * cycle + 30
        publisher.refresh_subscribers()
        publisher.on_bar("BTCUSD-OTC", minute(cycle, 100.0 + cycle), False)
        publisher.revalidate()
        for cid in ids:
            connections.remove_connection(cid)
        clock.now += 1
        publisher.refresh_subscribers()
        publisher.tick()
        publisher.revalidate()
    # then the publisher holds no per-connection state for them, and only the last hour of bars
    held = publisher.held()
    assert (held["subscriptions"], held["connections"], held["deliveries"]) == (0, 0, 0)
    assert held["minutes"] <= 61


def test_the_key_check_reads_the_key_store_once_per_round_not_once_per_keyless_connection(live):
    """Issue 16: in open mode the check read the keys' version item for every connection."""
    publisher, poster, clock, subscribe, connections, keys, _ = live
    # given 30 partners connected without a key while no key exists (open mode)
    for n in range(30):
        subscribe(f"open{n}", 60)
    reads: list[str] = []
    plain_read_version, plain_load = keys._read_version, keys._load
    keys._read_version = lambda: reads.append("version item (GetItem)") or plain_read_version()
    keys._load = lambda: reads.append("keys (Scan)") or plain_load()
    # when the publisher checks the keys
    publisher.revalidate()
    # then the key store was read a round's worth, not once per connection
    assert len(reads) <= 3, reads
    assert poster.deleted == []  # and open mode closed nobody
    # when a first key is created, the next round closes the key-less connections
    keys.create("first")
    publisher.revalidate()
    assert sorted(poster.deleted) == sorted(f"open{n}" for n in range(30))
    assert {m["error"] for c, m in poster.sent if m["type"] == "error"} == {"missing_key"}


def test_the_key_check_starts_between_batches_of_posts_not_under_one(live, monkeypatch):
    """The key check's scan of every connection is the publisher's largest read: started under a
    batch of posts it held up the batch's last clients (issue 16: +100 ms at 1,000 subscribers)."""

    from tradowix_bot.server import live_fanout

    publisher, poster, clock, subscribe, connections, *_ = live
    subscribe("a", 60)
    publisher.on_bar("BTCUSD-OTC", minute(0, 100.0), False)  # the subscriber is known
    publisher.subscriber_refresh_seconds = 0.01
    publisher.revalidate_seconds = 2.0  # due every 2 s; it may start 1 s early
    monkeypatch.setattr(live_fanout, "KEY_CHECK_EARLY_SECONDS", 1.0)
    posting, release = threading.Event(), threading.Event()
    plain_post_many, plain_scan = poster.post_many, connections.connections_and_subscriptions
    scans: list[bool] = []  # per key check: was a batch of posts in flight when it started?
    scanned = threading.Semaphore(0)

    def slow_post_many(posts):
        posting.set()
        release.wait(30)
        posting.clear()
        return plain_post_many(posts)

    def watched_scan(between_pages=None):
        scans.append(posting.is_set())
        scanned.release()
        return plain_scan(between_pages)

    poster.post_many = slow_post_many
    monkeypatch.setattr(connections, "connections_and_subscriptions", watched_scan)
    not_posting = publisher._not_posting = WatchedEvent()
    publisher.start()
    try:
        assert scanned.acquire(timeout=10)  # the check at start
        # given a batch of posts in flight when the next key check comes near
        publisher.on_bar("BTCUSD-OTC", minute(0, 101.0), True)
        assert posting.wait(10)
        # when the batch ends while the check waits for it
        assert not_posting.waited_while_clear.wait(10)  # the key check found a batch in flight
        release.set()
        # then the check starts after the batch, not under it
        assert scanned.acquire(timeout=10)
        assert scans[1:] == [False]
    finally:
        release.set()
        publisher.stop()


def test_the_key_check_reads_page_by_page_letting_posts_go_first_until_it_is_due(live, monkeypatch):
    """Each page of the connections scan waits for a batch of posts in flight, but only until the
    check is due: a publisher that never stops posting still checks in time (the 20 s bound)."""
    import time

    from tradowix_bot.server import live_connections

    publisher, poster, clock, subscribe, connections, keys, _ = live
    monkeypatch.setattr(live_connections, "SCAN_PAGE_ITEMS", 2)
    kept, _ = keys.create("kept")
    dropped, _ = keys.create("dropped")
    for n in range(3):  # with "dropped": eight connection items and a version item, five pages
        subscribe(f"kept{n}", 60, key_id=kept.key_id)
    subscribe("dropped", 60, key_id=dropped.key_id)
    keys.set_enabled(dropped.key_id, False)
    not_posting = publisher._not_posting = WatchedEvent()
    waits = not_posting.timeouts
    # when the check runs ahead of its due time
    publisher.revalidate(due=time.monotonic() + 30)
    # then it let posts go first before each page after the first, for at most the time left
    assert len(waits) >= 4 and all(0 < w <= 30 for w in waits)
    # and it read every page: the disabled key's connection is closed, the others kept
    assert poster.deleted == ["dropped"]
    # when the check is already due, it waits for nothing
    waits.clear()
    publisher.revalidate(due=time.monotonic() - 1)
    assert waits and all(w == 0 for w in waits)
