"""The symbol catalog: which markets exist, their category and price precision.

The collector writes the catalog it learns from the upstream's `instruments` message to
the store; until then the defaults below (Tradowix's common OTC markets) describe the
synthetic source and the seeded local stack.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class SymbolInfo:
    symbol: str
    name: str
    category: str
    precision: int
    # Typical price level and per-minute volatility (log-return std); used by the synthetic source.
    level: float = 1.0
    volatility: float = 0.0004

    def public(self) -> dict:
        d = asdict(self)
        d.pop("level")
        d.pop("volatility")
        return d


DEFAULT_SYMBOLS: tuple[SymbolInfo, ...] = (
    SymbolInfo("BTCUSD-OTC", "Bitcoin / US Dollar (OTC)", "crypto", 2, 64000.0, 0.0009),
    SymbolInfo("ETHUSD-OTC", "Ethereum / US Dollar (OTC)", "crypto", 2, 3400.0, 0.0011),
    SymbolInfo("EURUSD-OTC", "Euro / US Dollar (OTC)", "currencies", 5, 1.0850, 0.00018),
    SymbolInfo("GBPUSD-OTC", "British Pound / US Dollar (OTC)", "currencies", 5, 1.2700, 0.0002),
    SymbolInfo("USDJPY-OTC", "US Dollar / Japanese Yen (OTC)", "currencies", 3, 151.20, 0.0002),
    SymbolInfo("XAUUSD-OTC", "Gold / US Dollar (OTC)", "commodities", 2, 2650.0, 0.0004),
    SymbolInfo("AAPL-OTC", "Apple Inc. (OTC)", "stocks", 2, 190.0, 0.0005),
)


def catalog_from_dicts(items: list[dict]) -> list[SymbolInfo]:
    out = []
    for item in items:
        out.append(
            SymbolInfo(
                symbol=str(item["symbol"]),
                name=str(item.get("name") or item["symbol"]),
                category=str(item.get("category") or "other"),
                precision=int(item.get("precision", 5)),
                level=float(item.get("level", 1.0)),
                volatility=float(item.get("volatility", 0.0004)),
            )
        )
    return out


def categories(infos: list[SymbolInfo]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for info in infos:
        grouped.setdefault(info.category, []).append(info.symbol)
    return grouped
