"""The partner client: ChartApiClient and the live stream (httpx and websockets only)."""
