"""Given the admin panel's server side, called as API Gateway calls the function, when it is
attacked, then:
- simultaneous wrong secrets get no more secret checks than the design allows (5);
- a lock does not keep the owner out for good (another address, or `admin unlock`);
- logout ends the session on the server: a cookie saved before it opens nothing;
- a static path with a NUL byte or an over-long name is a 404, not a 500.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from tradowix_bot.errors import RateLimited
from tradowix_bot.server.admin import FREE_FAILURES, LoginThrottle, hash_secret
from tradowix_bot.server.state import StateStore
from unit_helpers import LambdaContext, get, load_event

pytestmark = pytest.mark.security

SECRET = "the-owners-admin-secret"


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def admin_api(api, monkeypatch):
    """The API function with an admin secret set and the login throttle on an injected clock."""
    import os

    from partner_api import context

    boto3.client("ssm").put_parameter(
        Name=os.environ["ADMIN_SECRET_PARAMETER"],
        Value=hash_secret(SECRET, iterations=1000),
        Type="SecureString",
    )
    clock = Clock()
    throttle = LoginThrottle(StateStore(api["StateTable"]), clock=clock)
    monkeypatch.setattr(context.services, "login_throttle", lambda: throttle)
    context.services.reset()  # the admin secret store reads the secret just set
    yield clock


def call(method: str, path: str, *, body=None, cookies=None, headers=None, source_ip="203.0.113.7"):
    """One request to the API as API Gateway sends it; returns (status, body, cookies)."""
    from unit_helpers import function_for

    handler = function_for(path)

    event = copy.deepcopy(load_event("verify_post.json"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["sourceIp"] = source_ip
    event["pathParameters"] = {"proxy": path.removeprefix("/api/")}
    event["requestContext"]["requestId"] = uuid.uuid4().hex
    event["headers"].update(headers or {})
    if body is None:
        event.pop("body", None)
    else:
        event["body"] = json.dumps(body)
    if cookies:
        event["cookies"] = cookies
    result = handler(event, LambdaContext())
    return result["statusCode"], json.loads(result.get("body") or "null"), result.get("cookies") or []


def login(secret: str, source_ip: str = "203.0.113.7"):
    return call("POST", "/api/admin/login", body={"secret": secret}, source_ip=source_ip)


def test_five_wrong_secrets_lock_the_address_which_a_right_secret_from_elsewhere_or_unlock_ends(
    admin_api, api
):
    # given five wrong secrets from one address: each is checked and refused (401)
    for _ in range(FREE_FAILURES):
        assert login("wrong")[0] == 401
    # when a sixth attempt comes at once: 429, the address waits 2 s (doubling after)
    status, body, _ = login("wrong")
    assert status == 429 and body["error"] == "admin_login_throttled"
    # then even the right secret from that address waits, but not from another address
    assert login(SECRET)[0] == 429
    assert login(SECRET, source_ip="198.51.100.20")[0] == 200
    # and the owner's unlock (the CLI's `admin unlock`) lets the locked address in at once
    assert LoginThrottle(StateStore(api["StateTable"])).unlock() == 1
    assert login(SECRET)[0] == 200


def test_the_lock_runs_out_and_doubles(admin_api):
    for _ in range(FREE_FAILURES):
        login("wrong")
    admin_api.now += 2.5  # the 2 s lock is over
    assert login("wrong")[0] == 401  # checked again, and wrong again
    status, body, _ = login("wrong")
    assert status == 429 and "4 s" in body["message"]  # the next wait is twice as long
    admin_api.now += 4.5
    assert login(SECRET)[0] == 200
    assert login("wrong")[0] == 401  # a success forgot the count


def test_simultaneous_attempts_get_exactly_the_free_secret_checks(tmp_path, monkeypatch):
    # given the local stack's data services (moto behind the journal, as the stack runs them)
    from local_emulator import lives

    with lives(tmp_path / "data", monkeypatch) as start:
        life = start()
        throttle = LoginThrottle(StateStore(life.names["StateTable"]), clock=lambda: 1000.0)
        allowed, refused = [], []
        lock = threading.Lock()

        def attempt(_):
            try:
                throttle.claim("203.0.113.66")
            except RateLimited:
                with lock:
                    refused.append(1)
            else:
                with lock:
                    allowed.append(1)  # this attempt would have its secret checked

        # when 60 attempts arrive at once
        with ThreadPoolExecutor(max_workers=60) as pool:
            list(pool.map(attempt, range(60)))
    # then exactly 5 get a secret check and the rest wait
    assert len(allowed) == FREE_FAILURES and len(refused) == 60 - FREE_FAILURES


def test_logout_ends_the_session_for_a_cookie_saved_before_it(admin_api):
    # given a signed-in owner, whose cookie an attacker saved (a shared machine, a stolen copy)
    status, body, cookies = login(SECRET)
    assert status == 200
    saved = [cookies[0].split(";")[0]]
    csrf = {"x-csrf-token": body["csrf_token"]}
    assert call("GET", "/api/admin/session", cookies=saved)[0] == 200
    # when the owner logs out
    assert call("POST", "/api/admin/logout", cookies=saved, headers=csrf)[0] == 200
    # then the saved cookie opens nothing, reading or writing
    status, body, _ = call("GET", "/api/admin/session", cookies=saved)
    assert status == 401 and body["error"] == "admin_session_ended"
    assert call("GET", "/api/admin/keys", cookies=saved)[0] == 401
    assert call("POST", "/api/admin/keys", body={"name": "x"}, cookies=saved, headers=csrf)[0] == 401
    # and a new sign-in works
    assert login(SECRET)[0] == 200


def test_the_state_table_holds_no_live_session_cookie(admin_api, api):
    _, body, cookies = login(SECRET)
    nonce_cookie = cookies[0].split(";")[0].split("=", 1)[1]
    items = json.dumps(boto3.client("dynamodb").scan(TableName=api["StateTable"])["Items"])
    assert "admin-session" in items and nonce_cookie not in items and body["csrf_token"] not in items


@pytest.mark.parametrize(
    "path", ["/static/x/css/app.css%00.html", "/static/x/css/app.css\x00.html", "/static/x/" + "a" * 300]
)
def test_static_paths_the_file_system_cannot_name_are_404(api, path):
    answer = get(path)
    assert answer.status == 404
