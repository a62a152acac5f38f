"""Migration to and from the original server's candle files: `<SYMBOL>.json` under a directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..candles import read_candle_file, validate_symbol, write_candle_file
from ..errors import BadRequest, MalformedCandles
from .store import CandleStore


@dataclass
class FileResult:
    path: Path
    symbol: str | None
    bars: int = 0
    error: str | None = None


def candles_dir(explicit: str | os.PathLike | None = None) -> Path:
    """--candles-dir, else TRADOWIX_CANDLES_DIR, else data/candles (as the original)."""
    return Path(explicit or os.environ.get("TRADOWIX_CANDLES_DIR") or "data/candles")


def import_dir(store: CandleStore, directory: Path) -> list[FileResult]:
    """Import every `<SYMBOL>.json`. A malformed file is reported and nothing of it is written."""
    results = []
    for path in sorted(directory.glob("*.json")):
        symbol = path.stem
        try:
            validate_symbol(symbol)
            bars = read_candle_file(path)
        except (MalformedCandles, BadRequest) as exc:
            message = (
                exc.message
                if isinstance(exc, MalformedCandles)
                else f"{path}: file name is not a symbol ({exc.message})"
            )
            results.append(FileResult(path, None, error=message))
            continue
        if bars:
            store.write(symbol, bars)
        results.append(FileResult(path, symbol, bars=len(bars)))
    return results


def export_dir(store: CandleStore, directory: Path, symbols: list[str] | None = None) -> list[FileResult]:
    results = []
    for symbol in symbols or store.symbols_with_data():
        bars = store.read(symbol) or []
        path = directory / f"{symbol}.json"
        write_candle_file(path, bars)
        results.append(FileResult(path, symbol, bars=len(bars)))
    return results
