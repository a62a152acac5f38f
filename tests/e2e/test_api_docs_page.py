"""Given /api/docs, when a browser opens it, then it renders a readable page (headings, the
endpoints and their parameters, the errors); when a client asks for JSON (or says nothing, as
curl, httpx and the partner client do), then it gets the JSON catalog as before."""

from __future__ import annotations

import httpx
import pytest
from e2e_helpers import VIEWPORTS, screenshot, serious_axe_violations

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_docs_in_a_browser_are_a_readable_page(local_stack, new_page, viewport):
    page = new_page(*VIEWPORTS[viewport])
    response = page.goto(local_stack.api_url + "/api/docs")
    assert response.headers["content-type"].startswith("text/html")
    assert page.locator("h1").inner_text().startswith("Tradowix chart API")
    # every endpoint of the JSON catalog has its heading, with its parameters in a table
    catalog = httpx.get(local_stack.api_url + "/api/docs", timeout=10).json()
    headings = page.locator("#endpoints h3").all_inner_texts()
    assert [" ".join(h.split()) for h in headings] == [
        f"{e['method']} {e['path']}" for e in catalog["endpoints"]
    ]
    candles = page.locator("#endpoints h3", has_text="/api/candles").first
    assert candles.is_visible()
    assert "timeframe" in page.inner_text("#endpoints")
    assert "429" in page.inner_text("#errors") and "subscribe" in page.inner_text("#websocket")
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[viewport][0]
    assert serious_axe_violations(page) == []
    screenshot(page, f"api-docs-{viewport}", full_page=False)


@pytest.mark.parametrize(
    "accept", [None, "*/*", "application/json", "application/json, text/html", "text/html;q=0.5, */*"]
)
def test_clients_that_ask_for_json_get_the_catalog(local_stack, accept):
    headers = {"Accept": accept} if accept else {}
    with httpx.Client(timeout=10) as client:
        if accept is None:
            client.headers.pop("Accept", None)
        r = client.get(local_stack.api_url + "/api/docs", headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["endpoints"] and "Accept" in r.headers.get("vary", "")


def test_the_partner_client_still_reads_the_catalog(local_stack):
    from tradowix_bot.client.chart_client import ChartApiClient

    catalog = ChartApiClient(local_stack.api_url, None).docs()
    assert catalog["openapi"] == "/api/openapi.json" and catalog["endpoints"]
