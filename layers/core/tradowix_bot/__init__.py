"""Tradowix market-data sharing.

The top level is the domain model every part shares (candles, resample, errors, symbols,
timing); the parts are subpackages (docs/architecture.md, "Packages"):

- `client/`: the partner client (httpx and websockets only; never imports the server side);
- `strategy/`: the built-in strategy, its backtest and live signals (the [strategy] extra);
- `server/`: what runs behind API Gateway (the Lambda layer ships it and the top level only);
- `collector/`: the collector (its container installs the whole package);
- `cli/`: the `tradowix` command.

`chart_client`, `live_client` and `live_signals` here are the old import paths, kept for
partner bots written before the split.
"""

__version__ = "0.1.0"
