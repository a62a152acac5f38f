"""The replay source: the original server's candle files (<SYMBOL>.json) and CSV
(<SYMBOL>.csv with a `time,open,high,low,close` header) as history. No live ticks: the
collector's gap repair writes the files' bars into the store, for migration and tests.

Both formats follow one rule: a file with anything wrong in it (not a bar, a repeated
`time`) is refused whole with an error naming the file and line, and nothing of it is used."""

from __future__ import annotations

import csv
from pathlib import Path

from ..candles import Bar, bar_from_mapping, read_candle_file
from ..errors import MalformedCandles
from ..symbols import SymbolInfo
from .sources import Linked, Source


def read_csv(path: Path) -> list[Bar]:
    bars: dict[int, Bar] = {}
    seen: dict[int, int] = {}
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            for row in reader:
                line = reader.line_num
                try:
                    item = {k: float(row[k]) for k in ("time", "open", "high", "low", "close")}
                    item["time"] = int(item["time"])
                    bar = bar_from_mapping(item)
                except (KeyError, TypeError, ValueError) as exc:
                    raise MalformedCandles(f"{path}:{line}: {exc}") from None
                if bar.time in seen:
                    raise MalformedCandles(
                        f"{path}:{line}: duplicate time {bar.time} (first at line {seen[bar.time]})"
                    )
                seen[bar.time] = line
                bars[bar.time] = bar
    except UnicodeDecodeError:
        raise MalformedCandles(f"{path}:1: not UTF-8 text") from None
    return [bars[t] for t in sorted(bars)]


class ReplaySource(Source):
    name = "replay"
    history_page_minutes = 100_000

    def __init__(self, directory: Path, clock):
        super().__init__()
        self.directory = Path(directory)
        self.clock = clock
        self._bars: dict[str, list[Bar]] = {}

    def _files(self) -> dict[str, Path]:
        return {p.stem: p for p in sorted(self.directory.glob("*")) if p.suffix in (".json", ".csv")}

    def _load(self, symbol: str) -> list[Bar]:
        if symbol not in self._bars:
            path = self._files().get(symbol)
            if path is None:
                self._bars[symbol] = []
            elif path.suffix == ".csv":
                self._bars[symbol] = read_csv(path)
            else:
                self._bars[symbol] = read_candle_file(path)
        return self._bars[symbol]

    async def start(self) -> None:
        if not self.directory.is_dir():
            raise MalformedCandles(f"replay directory {self.directory} does not exist")
        self.status.connected = self.status.authenticated = True

    async def instruments(self) -> list[SymbolInfo]:
        return [SymbolInfo(s, s, "other", 5) for s in self._files()]

    async def watch(self, symbol: str) -> None:
        self.emit(Linked(symbol, self.clock.now()))

    def held_times(self, symbol: str) -> list[int] | None:
        try:
            return [b.time for b in self._load(symbol)]
        except MalformedCandles:
            return None

    async def history(self, symbol: str, older_than: int, minutes: int) -> list[Bar]:
        bars = [b for b in self._load(symbol) if b.time < older_than]
        return bars[-minutes:] if minutes else []
