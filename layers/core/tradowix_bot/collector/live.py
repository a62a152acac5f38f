"""The owner's standalone live stream (`tradowix live SYM --token ...`): the upstream read
directly with the session token, shaped as the partner protocol's messages — `history`, then a
`bar` for each closed minute, carrying the bar of the asked timeframe so far and `closed`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

from ..candles import as_dicts
from ..resample import bucket_bar, bucket_start, ends_bucket, resample
from .bars import BadTick, MinuteBars, validate_tick
from .clock import Clock
from .sources import Source, Tick

HISTORY_MINUTES = 400  # one history page
# Wall seconds after a minute ends before its bar is closed without a newer tick: network and
# scheduling delays are wall time, whatever the clock's speed (as in the collector).
CLOSE_GRACE = 2.0


async def stream_messages(
    source: Source, symbols: list[str], timeframe: int, clock: Clock
) -> AsyncIterator[dict]:
    await source.start()
    now = int(clock.now())
    minutes: dict[str, list] = {}
    for symbol in symbols:
        bars = await source.history(symbol, older_than=now - now % 60, minutes=HISTORY_MINUTES)
        minutes[symbol] = list(bars)
        candles = as_dicts(resample(bars, timeframe))
        yield {"type": "history", "symbol": symbol, "timeframe": timeframe, "candles": candles}
    builders = {s: MinuteBars(s) for s in symbols}
    for symbol in symbols:
        await source.watch(symbol)
    while True:
        try:
            event = await asyncio.wait_for(source.events.get(), timeout=1.0)
        except TimeoutError:
            event = None
        closed = []
        if isinstance(event, Tick) and event.symbol in builders:
            try:
                ts, price = validate_tick(event.price, event.timestamp_ms, clock.now())
            except BadTick:
                continue
            bar, _ = builders[event.symbol].add(ts, price)
            if bar is not None:
                closed.append((event.symbol, bar))
        if source.events.empty():  # else ticks of the minute may be waiting their turn
            for symbol, builder in builders.items():
                bar = builder.close_due(clock.now(), clock.slack(CLOSE_GRACE))
                if bar is not None:
                    closed.append((symbol, bar))
        for symbol, bar in closed:
            bucket = bucket_start(bar.time, timeframe)
            minutes[symbol] = [m for m in minutes[symbol] if m[0] >= bucket and m[0] != bar.time] + [bar]
            candle = as_dicts([bucket_bar(minutes[symbol], timeframe, bucket)])[0]
            done = ends_bucket(bar.time, timeframe)
            yield {"type": "bar", "symbol": symbol, "timeframe": timeframe, "candle": candle, "closed": done}


def live_messages(token: str, symbols: list[str], timeframe: int, url: str | None = None) -> Iterator[dict]:
    """A blocking iterator over `stream_messages` from the real upstream (or `url`)."""
    from .tradowix import DEFAULT_URL, TradowixSource

    clock = Clock()
    source = TradowixSource(url or DEFAULT_URL, token, clock)
    loop = asyncio.new_event_loop()
    messages = stream_messages(source, symbols, timeframe, clock)
    try:
        while True:
            try:
                yield loop.run_until_complete(messages.__anext__())
            except StopAsyncIteration:
                return
    finally:
        loop.run_until_complete(messages.aclose())
        loop.run_until_complete(source.close())
        loop.close()
