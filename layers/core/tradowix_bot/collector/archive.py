"""One-shot backfill: page every symbol's history back over a window and store it.

Resumable and idempotent: for each symbol only the minutes outside the stored range are
requested (newer than the newest stored bar, older than the oldest), progress is written
every few pages, and a run that finds nothing new writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..candles import MINUTE, merge, read_candle_file, write_candle_file
from .sources import Source

CHECKPOINT_PAGES = 10


class StoreTarget:
    """The S3 candle store."""

    def __init__(self, store):
        self.store = store

    def read(self, symbol: str, start: int) -> list[tuple]:
        return self.store.read(symbol, start) or []

    def write(self, symbol: str, bars: list[tuple]) -> int:
        return self.store.write(symbol, bars)


class FilesTarget:
    """The original server's `<SYMBOL>.json` files."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def read(self, symbol: str, start: int) -> list[tuple]:
        path = self.directory / f"{symbol}.json"
        return [tuple(b) for b in read_candle_file(path) if b[0] >= start] if path.exists() else []

    def write(self, symbol: str, bars: list[tuple]) -> int:
        path = self.directory / f"{symbol}.json"
        existing = [tuple(b) for b in read_candle_file(path)] if path.exists() else []
        write_candle_file(path, merge(existing, bars))
        return 1


@dataclass
class ArchiveResult:
    symbol: str
    fetched: int = 0
    written: int = 0
    error: str | None = None


async def _page_back(source: Source, symbol: str, older: int, floor: int, target, symbol_progress) -> int:
    """Fetch [floor, older) newest first, writing every few pages. Returns bars written."""
    batch: list[tuple] = []
    written = pages = 0
    while older > floor:
        minutes = int(min(source.history_page_minutes, (older - floor) // MINUTE))
        page = [tuple(b) for b in await source.history(symbol, older, minutes) if floor <= b[0] < older]
        pages += 1
        symbol_progress(pages)
        if not page:
            break
        batch.extend(page)
        older = min(b[0] for b in page)
        if pages % CHECKPOINT_PAGES == 0:
            target.write(symbol, batch)
            written += len(batch)
            batch = []
    if batch:
        target.write(symbol, batch)
        written += len(batch)
    return written


async def archive(
    source: Source,
    target,
    symbols: list[str],
    start: int,
    end: int,
    progress: Callable[[int, int, str, int], None] = lambda *a: None,
) -> list[ArchiveResult]:
    """Backfill [start, end) (minute-aligned) for every symbol."""
    results = []
    for index, symbol in enumerate(symbols):
        result = ArchiveResult(symbol)
        try:
            stored = target.read(symbol, start)
            stored = [b for b in stored if b[0] < end]

            def step(pages, index=index, symbol=symbol):
                progress(index, len(symbols), symbol, pages)

            if stored:
                newest, oldest = stored[-1][0], stored[0][0]
                result.written += await _page_back(source, symbol, end, newest + MINUTE, target, step)
                result.written += await _page_back(source, symbol, oldest, start, target, step)
            else:
                result.written += await _page_back(source, symbol, end, start, target, step)
        except Exception as exc:  # noqa: BLE001 - reported per symbol; the next run resumes
            result.error = f"{type(exc).__name__}: {exc}"
        results.append(result)
        progress(index + 1, len(symbols), symbol, 0)
    return results
