"""Tradowix market-data sharing: domain code shared by the Lambda handlers, the collector and the CLI.

`tradowix_bot.client.chart_client` is the partner SDK and must stay importable with only the
light dependencies (httpx, websockets); everything server-side imports boto3 lazily.
"""

__version__ = "0.1.0"
