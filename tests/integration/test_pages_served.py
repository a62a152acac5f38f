"""Given the local stack, when a browser fetches the pages and assets, then content types and
caching headers are right and no page carries a secret or inline script."""

from __future__ import annotations

import re

import httpx
import pytest

pytestmark = pytest.mark.integration

PAGES = ["/", "/gate.html", "/admin"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_html_not_cached_and_locked_down(local_stack, path):
    r = httpx.get(local_stack.api_url + path)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "no-cache"
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    # every script is an external file: nothing inline, so nothing secret can hide there
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", r.text, re.S)
    assert scripts and all('src="/static/' in attrs and not body.strip() for attrs, body in scripts)
    assert "twk_" not in r.text.replace("<code>twk_</code>", "").replace("twk_…", "")
    assert "{{static:" not in r.text


def test_assets_are_immutable_under_their_hash_and_typed(local_stack):
    html = httpx.get(local_stack.api_url + "/").text
    urls = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    types = {
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".svg": "image/svg+xml",
    }
    assert any(u.endswith("lightweight-charts.standalone.production.js") for u in urls), (
        "the chart library is missing: run `npm ci` (tests/run.py does) before the stack starts"
    )
    for url in urls:
        r = httpx.get(local_stack.api_url + url)
        assert r.status_code == 200, url
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert r.headers["content-type"] == types[url[url.rindex(".") :]]
    # an old hash still gets today's file, but not for a year
    stale = re.sub(r"^/static/[^/]+/", "/static/000000000000/", urls[0])
    r = httpx.get(local_stack.api_url + stale)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "path", ["/static/x/../../app.py", "/static/x/%2e%2e/app.py", "/static/x/index.html", "/static/x/nope.js"]
)
def test_only_static_files_are_served(local_stack, path):
    r = httpx.get(local_stack.api_url + path)
    assert r.status_code == 404
    assert "FastAPI" not in r.text
