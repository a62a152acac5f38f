"""Given the partner API writing its logs, when a key arrives in a header, the body, the query
string or a cookie (or a request fails unexpectedly), then the key never appears in the logs."""

from __future__ import annotations

import io
import json

import pytest
from unit_helpers import get, invoke


@pytest.fixture
def log_lines(api):
    """Everything the Powertools logger writes (its stream is stdout in Lambda)."""
    from partner_api.errors import logger

    handler = logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    handler.setStream(previous)


def test_keys_never_appear_in_the_logs(log_lines, admin, capfd):
    # given: a key, and one request per place a key can travel
    _, raw = admin.create("partner")
    wrong = "twk_" + "W" * 43
    get("/api/candles", {"symbol": "BTCUSD-OTC", "limit": 1}, {"X-Api-Key": raw})
    get("/api/candles", {"symbol": "BTCUSD-OTC", "limit": 1, "api_key": raw})
    get("/api/live/status", {"api_key": wrong})
    get("/api/candles", raw_query=f"symbol=BTC%20USD&api_key={raw}")
    verify = invoke("verify_post.json", body=json.dumps({"api_key": raw}))
    cookie = verify.cookies[0].split(";")[0]
    invoke("symbols_get_cookie.json", cookies=[cookie])
    invoke("verify_post.json", body='{"api_key": "' + raw + '", broken')
    # then: every request was logged, the query string with its key masked
    lines = log_lines()
    requests = [line for line in lines if line["message"] == "request"]
    assert len(requests) == 7
    assert sum("api_key=***" in line["query"] for line in requests) == 3
    assert [line["status"] for line in requests] == [200, 200, 401, 400, 200, 200, 400]
    # and neither key, nor any long piece of it, nor the session token is in any output
    everything = json.dumps(lines) + "".join(capfd.readouterr())
    for secret in (raw, raw[4:], raw[4:20], raw[-16:], wrong, cookie.split("=", 1)[1]):
        assert secret not in everything


def test_unexpected_errors_are_logged_without_the_key(log_lines, admin, monkeypatch):
    from partner_api import context

    _, raw = admin.create("partner")

    def broken(*args, **kwargs):
        raise RuntimeError(f"boom while serving {raw}")

    monkeypatch.setattr(context.services.market(), "candles_answer", broken)
    answer = get("/api/candles", {"symbol": "BTCUSD-OTC", "api_key": raw})
    assert answer.status == 500 and answer.json()["error"] == "internal_error"
    assert raw not in answer.body.decode()
    text = json.dumps(log_lines())
    assert "boom while serving twk_***" in text and raw not in text


def test_redaction_covers_the_forms_a_key_takes():
    from tradowix_bot.server.redact import redact

    raw = "twk_" + "Ab9-_" * 9
    assert raw not in redact(f"GET /api/candles?symbol=X&api_key={raw}&limit=1")
    assert redact("api_key=not-even-twk&x=1") == "api_key=***&x=1"
    assert raw not in redact(json.dumps({"headers": {"x-api-key": raw}}))
    assert redact('{"cookie": "twk_session=abc.def"}') == '{"cookie": "***"}'
