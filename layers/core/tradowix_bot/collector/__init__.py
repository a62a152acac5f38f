"""The collector: a market-data source → 1-minute bars → the candle store (S3) and live records.

sources.py     the unified source interface (one base, thin adapters)
tradowix.py    the real upstream (WebSocket protocol of Tradowix)
synthetic.py   deterministic OTC-like ticks as market time passes (offline / local stack)
synthetic_market.py  the price generator behind it: a pure function of (symbol, time)
replay.py      the original server's JSON candle files and CSV
clock.py       the collector's time: real, compressed, or moved by hand (tests)
bars.py        tick validation and the 1m bar builder
tracked.py     one object per symbol the collector writes (lease, bars, link, partial minutes)
repair.py      gap repair from the source's history; rebuilding corrupt stored days
writer.py      closed bars → S3 (one PUT per closed minute), forming bar → DynamoDB
service.py     the Collector: leases and scale-out, ticks, the clock loop, status, sinks
metrics.py     its figures for CloudWatch (EMF lines on stdout)
"""

from .bars import BadTick, MinuteBars, validate_tick
from .clock import Clock, ManualClock
from .live import live_messages
from .service import Collector

__all__ = ["BadTick", "Clock", "Collector", "ManualClock", "MinuteBars", "live_messages", "validate_tick"]
