"""1-minute bars: the in-memory form, validation, and the original server's file format.

A bar is a tuple `(time, open, high, low, close)` or, when the minute's tick count is known,
`(time, open, high, low, close, volume)`: `time` is the minute's open in unix seconds.
Tuples keep 10,080 bars small and fast; `as_dicts` gives the API's JSON shape, where
`volume` appears only when known (bars stored before volume existed have none: omitted,
never 0).
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import BadRequest, MalformedCandles

MINUTE = 60
# Letters, digits, '_' and '-', with single dots inside ("BRK.B"); never '/', '..', spaces, and
# no dot at the end. Written without look-arounds, so the OpenAPI document can publish it as is.
SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*$"
SYMBOL_RE = re.compile(SYMBOL_PATTERN)
MAX_SYMBOL_LENGTH = 40


class Bar(tuple):
    """A 1m bar: `Bar(time, open, high, low, close[, volume])`.

    A tuple of 5 elements, or 6 when the volume (the minute's tick count) is known: so a bar
    without volume still equals the plain `(t, o, h, l, c)` tuples used everywhere, and a
    None volume is never stored or served. (A NamedTuple would always carry a 6th element.)
    """

    __slots__ = ()

    def __new__(
        cls, time: int, open: float, high: float, low: float, close: float, volume: int | None = None
    ):
        values = (time, open, high, low, close) if volume is None else (time, open, high, low, close, volume)
        return tuple.__new__(cls, values)

    def __getnewargs__(self):  # pickling/copy: rebuild through __new__
        return tuple(self)

    def __repr__(self) -> str:
        fields = ("time", "open", "high", "low", "close", "volume")
        return "Bar(" + ", ".join(f"{k}={v!r}" for k, v in zip(fields, self, strict=False)) + ")"

    time = property(operator.itemgetter(0))
    open = property(operator.itemgetter(1))
    high = property(operator.itemgetter(2))
    low = property(operator.itemgetter(3))
    close = property(operator.itemgetter(4))

    @property
    def volume(self) -> int | None:
        return self[5] if len(self) > 5 else None


def has_volume(bar: tuple) -> bool:
    return len(bar) > 5 and bar[5] is not None


def plain(bar: tuple) -> tuple:
    """The stored form: 5 elements, or 6 when the volume is known (never a None volume)."""
    return tuple(bar[:6]) if has_volume(bar) else tuple(bar[:5])


def validate_symbol(symbol: str | None) -> str:
    """Return the symbol if it can safely name a stored series, else raise BadRequest."""
    if symbol is None or symbol == "":
        raise BadRequest(
            "query parameter 'symbol' is required, e.g. symbol=BTCUSD-OTC", code="missing_symbol"
        )
    if len(symbol) > MAX_SYMBOL_LENGTH or not SYMBOL_RE.fullmatch(symbol):
        raise BadRequest(
            f"invalid symbol: use up to {MAX_SYMBOL_LENGTH} letters, digits, '-', '_' or single dots",
            code="invalid_symbol",
        )
    return symbol


def as_dicts(bars: Iterable[tuple]) -> list[dict]:
    return [
        {"time": b[0], "open": b[1], "high": b[2], "low": b[3], "close": b[4], "volume": b[5]}
        if len(b) > 5 and b[5] is not None
        else {"time": b[0], "open": b[1], "high": b[2], "low": b[3], "close": b[4]}
        for b in bars
    ]


PRICE_FIELDS = ("open", "high", "low", "close")


def _shown(value) -> str:
    return json.dumps(value, default=str)


def bar_problem(bar) -> str | None:
    """Why `bar` = (time, open, high, low, close[, volume]) is not a sane 1m bar; None when it is.

    The one bar rule: imported files, the collector's sources and gap repair, and the store's
    salvage of a damaged day keep exactly the bars it passes. Time: whole unix seconds at the
    start of a minute; prices: positive finite numbers, high and low containing open and close;
    volume (optional, None: unknown): a whole number of ticks, 0 or more."""
    if not isinstance(bar, tuple | list) or len(bar) not in (5, 6):
        return "a bar is time, open, high, low, close and an optional volume"
    t = bar[0]
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t != int(t) or t < 0:
        return f"'time' must be whole unix seconds, got {_shown(t)}"
    if int(t) % MINUTE:
        return f"'time' {int(t)} is not the start of a minute"
    for name, value in zip(PRICE_FIELDS, bar[1:5], strict=True):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"'{name}' must be a number, got {_shown(value)}"
        if not math.isfinite(value) or value <= 0:
            return f"'{name}' must be a positive finite number, got {value}"
    o, h, lo, c = (float(v) for v in bar[1:5])
    if h < max(o, c, lo) or lo > min(o, c):
        return f"inconsistent bar at {int(t)}: high {h} / low {lo} do not contain open {o} and close {c}"
    volume = bar[5] if len(bar) > 5 else None
    if volume is not None and (isinstance(volume, bool) or not isinstance(volume, int) or volume < 0):
        return f"'volume' must be a whole number of ticks, 0 or more, got {_shown(volume)}"
    return None


def valid_bar(bar) -> bool:
    return bar_problem(bar) is None


def bar_from_mapping(item) -> Bar:
    """Validate one `{time, open, high, low, close[, volume]}` object (the original file format,
    plus the optional tick volume)."""
    if not isinstance(item, dict):
        raise ValueError(f"expected an object with time/open/high/low/close, got {type(item).__name__}")
    missing = [f for f in ("time", "open", "high", "low", "close") if f not in item]
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    volume = item.get("volume")
    if isinstance(volume, float) and volume.is_integer():
        volume = int(volume)  # JSON writers may give a whole count as 3.0
    values = (item["time"], *(item[f] for f in PRICE_FIELDS), volume)
    problem = bar_problem(values)
    if problem:
        raise ValueError(problem)
    t, o, h, lo, c = int(values[0]), *(float(v) for v in values[1:5])
    return Bar(t, o, h, lo, c, volume)


def _array_elements(text: str, start: int) -> Iterator[tuple[int, object]]:
    """Yield (offset, value) for each element of the JSON array opening at `start`."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"[ \t\n\r]*")
    idx = ws.match(text, start + 1).end()
    if text[idx : idx + 1] == "]":
        return
    while True:
        value, end = decoder.raw_decode(text, idx)
        yield idx, value
        idx = ws.match(text, end).end()
        if text[idx : idx + 1] == ",":
            idx = ws.match(text, idx + 1).end()
            continue
        return


def parse_candle_text(text: str, source: str, *, allow_unordered: bool = True) -> list[Bar]:
    """Parse the original server's candle file: a JSON list of bars, or `{"candles": [...]}`.

    Any problem raises MalformedCandles naming `source` and the line, and nothing is
    returned, so a caller never imports half a file.
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedCandles(f"{source}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if isinstance(doc, dict) and isinstance(doc.get("candles"), list):
        array_start = text.index("[", text.index('"candles"'))
    elif isinstance(doc, list):
        array_start = text.index("[")
    else:
        raise MalformedCandles(f"{source}:1: expected a list of candles or an object with a 'candles' list")
    bars: list[Bar] = []
    seen: dict[int, int] = {}
    for offset, item in _array_elements(text, array_start):
        line = text.count("\n", 0, offset) + 1
        try:
            bar = bar_from_mapping(item)
        except ValueError as exc:
            raise MalformedCandles(f"{source}:{line}: {exc}") from None
        if bar.time in seen:
            raise MalformedCandles(
                f"{source}:{line}: duplicate time {bar.time} (first at line {seen[bar.time]})"
            )
        if not allow_unordered and bars and bar.time < bars[-1].time:
            raise MalformedCandles(f"{source}:{line}: time {bar.time} is older than the bar before it")
        seen[bar.time] = line
        bars.append(bar)
    bars.sort()
    return bars


def read_candle_file(path: Path, *, allow_unordered: bool = True) -> list[Bar]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MalformedCandles(f"{path}:1: not UTF-8 text") from None
    if not text.strip():
        raise MalformedCandles(f"{path}:1: empty file")
    return parse_candle_text(text, str(path), allow_unordered=allow_unordered)


def write_candle_file(path: Path, bars: Iterable[tuple]) -> None:
    """Write bars in the original format (one bar per line, readable diffs), atomically."""
    rows = [json.dumps(d, separators=(",", ":")) for d in as_dicts(bars)]
    text = "[\n" + ",\n".join(rows) + "\n]\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def merge(existing: Iterable[tuple], new: Iterable[tuple]) -> list[tuple]:
    """Union keyed by minute; a bar in `new` replaces the stored bar of the same minute."""
    by_time = {b[0]: plain(b) for b in existing}
    for b in new:
        by_time[b[0]] = plain(b)
    return [by_time[t] for t in sorted(by_time)]
