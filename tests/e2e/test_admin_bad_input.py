"""Given the admin API of the session's stack, when it gets bad input (a wrong secret, many
wrong secrets, a write without its CSRF token, a partner key, a bad session token), then each is
refused with a clear error, nothing is changed, and the server stays up."""

from __future__ import annotations

import httpx
import pytest
from e2e_helpers import stored_session_token

pytestmark = pytest.mark.e2e


def client_from(api_url: str, address: str) -> httpx.Client:
    """A client whose requests come from another loopback address: the login throttle counts per
    address, so these tests do not lock out the other tests' 127.0.0.1."""
    return httpx.Client(base_url=api_url, transport=httpx.HTTPTransport(local_address=address), timeout=10)


def test_wrong_admin_secret_is_refused(local_stack):
    with client_from(local_stack.api_url, "127.0.0.5") as client:
        r = client.post("/api/admin/login", json={"secret": "guess"})
    assert r.status_code == 401
    assert r.json() == {"error": "wrong_admin_secret", "message": "wrong admin secret"}
    assert "set-cookie" not in r.headers


def test_many_wrong_secrets_are_slowed_and_never_crash(local_stack, admin_secret):
    with client_from(local_stack.api_url, "127.0.0.6") as attacker:
        statuses = []
        for i in range(12):
            r = attacker.post("/api/admin/login", json={"secret": f"guess-{i}"})
            statuses.append(r.status_code)
            if r.status_code == 429:
                retry_after = int(r.headers["Retry-After"])
                assert retry_after >= 1 and "try again in" in r.json()["message"]
        # the first few are plain refusals, then every attempt is told to wait
        assert statuses[:5] == [401] * 5
        assert set(statuses[5:]) == {429}
        # even the right secret is refused while the address waits
        r = attacker.post("/api/admin/login", json={"secret": admin_secret})
        assert r.status_code == 429
        assert "set-cookie" not in r.headers
    # the server still answers, and the owner on another address can still sign in
    assert httpx.get(local_stack.api_url + "/api/docs").status_code == 200
    with client_from(local_stack.api_url, "127.0.0.7") as owner:
        assert owner.post("/api/admin/login", json={"secret": admin_secret}).status_code == 200


def without_usage(keys: list[dict]) -> list[dict]:
    return [{k: v for k, v in key.items() if k != "usage"} for key in keys]


def test_write_without_csrf_token_is_refused_and_changes_nothing(admin_api):
    before = admin_api.get("/api/admin/keys").json()["keys"]
    for method, path, body in [
        ("POST", "/api/admin/keys", {"name": "no csrf"}),
        ("PUT", "/api/admin/session-token", {"token": "abc"}),
        ("POST", f"/api/admin/keys/{before[0]['key_id'] if before else 'key_x'}/disable", None),
    ]:
        r = admin_api.request(method, path, json=body, headers={"X-CSRF-Token": ""})
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"] == "csrf_token_invalid"
        r = admin_api.request(method, path, json=body, headers={"X-CSRF-Token": "0" * 64})
        assert r.status_code == 403
    # (this minute's usage and its reset countdown move on by themselves: the keys are compared without them)
    assert without_usage(admin_api.get("/api/admin/keys").json()["keys"]) == without_usage(before)
    assert admin_api.get("/api/admin/session-token").json()["set"] in (True, False)


def test_partner_key_is_refused_on_admin_endpoints(local_stack, partner_key):
    _, raw = partner_key
    for r in (
        httpx.get(local_stack.api_url + "/api/admin/keys", headers={"X-Api-Key": raw}),
        httpx.get(local_stack.api_url + "/api/admin/keys", params={"api_key": raw}),
        httpx.post(local_stack.api_url + "/api/admin/keys", json={"name": "x"}, headers={"X-Api-Key": raw}),
    ):
        assert r.status_code == 403
        assert r.json()["error"] == "partner_key_refused"
    # and the partner's browser cookie is no admin session either
    with httpx.Client(base_url=local_stack.api_url) as browser:
        assert browser.post("/api/auth/verify", json={"api_key": raw}).status_code == 200
        assert "twk_session" in browser.cookies
        r = browser.get("/api/admin/keys")
        assert r.status_code == 401 and r.json()["error"] == "admin_login_required"


@pytest.mark.parametrize(
    "token, code, words",
    [
        ("", "empty_session_token", "empty"),
        ("   ", "empty_session_token", "empty"),
        ("t" * 10_000, "session_token_too_long", "10,000 characters"),
        ("two words", "invalid_session_token", "spaces"),
        (None, "invalid_session_token", "string"),
    ],
)
def test_bad_session_token_is_refused_and_the_stored_one_kept(local_stack, admin_api, token, code, words):
    good = "tdx_good_token_1234567890"
    assert admin_api.put("/api/admin/session-token", json={"token": good}).status_code == 200
    before = admin_api.get("/api/admin/session-token").json()
    r = admin_api.put("/api/admin/session-token", json={"token": token})
    assert r.status_code == 400
    assert r.json()["error"] == code and words in r.json()["message"]
    assert admin_api.get("/api/admin/session-token").json() == before
    assert stored_session_token(local_stack) == good
