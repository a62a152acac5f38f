"""The collector: a market-data source → 1-minute bars → the candle store (S3) and live records.

sources.py     the unified source interface (one base, thin adapters)
tradowix.py    the real upstream (WebSocket protocol of Tradowix)
synthetic.py   deterministic OTC-like ticks as wall-clock passes (offline / local stack)
replay.py      the original server's JSON candle files and CSV
bars.py        tick validation and the 1m bar builder
writer.py      closed bars → S3 (one PUT per closed minute), forming bar → DynamoDB
service.py     the Collector: leases, gap repair, retention, upstream status, sinks
"""

from .bars import BadTick, MinuteBars, validate_tick
from .clock import Clock
from .live import live_messages
from .service import Collector

__all__ = ["BadTick", "Clock", "Collector", "MinuteBars", "live_messages", "validate_tick"]
