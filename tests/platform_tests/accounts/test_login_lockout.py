"""Login lock-out (django-axes) on the session login and the token endpoint: N failures
lock the username and the IP address, each on its own; a success resets the count; the
lock-out is in the audit trail; the API answers 429 {detail, code}, the page says why."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from lesionloop.accounts.lockout import client_ip
from lesionloop.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

LIMIT = 3
SESSION, TOKEN = "/accounts/login/", "/api/auth/token/"


@pytest.fixture(autouse=True)
def _limit(settings: Any) -> None:
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = LIMIT


def _login(url: str, username: str, password: str, ip: str) -> Any:
    return Client(REMOTE_ADDR=ip).post(url, {"username": username, "password": password})


def _outcome(url: str, response: Any) -> str:
    """The outcome ("ok", "wrong" or "locked"), checking each endpoint's own shape."""
    if response.status_code == 429:
        if url == TOKEN:
            body = response.json()
            assert body["code"] == "locked_out" and "Too many failed logins" in body["detail"]
        else:
            assert b"Too many failed logins" in response.content
            assert b'name="password"' in response.content  # still the login page
        assert int(response["Retry-After"]) == 15 * 60
        return "locked"
    if url == TOKEN:
        if response.status_code == 200:
            assert len(response.json()["token"]) == 40
            return "ok"
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_credentials"
        return "wrong"
    if response.status_code == 302:
        return "ok"
    assert response.status_code == 200 and b"Wrong username or password" in response.content
    return "wrong"


# (attempts: (username, password, ip)), the outcome of each
CASES = {
    "username-locked-from-any-ip": [
        (("cora", "bad", "10.0.0.1"), "wrong"),
        (("cora", "bad", "10.0.0.2"), "wrong"),
        (("cora", "bad", "10.0.0.3"), "locked"),  # the failure that reaches the limit
        (("cora", "cora-pass-1", "10.0.0.4"), "locked"),  # right password, new address
        (("carl", "carl-pass-1", "10.0.0.4"), "ok"),  # other users are not affected
    ],
    "ip-locked-for-any-username": [
        (("ghost1", "bad", "10.0.1.1"), "wrong"),
        (("ghost2", "bad", "10.0.1.1"), "wrong"),
        (("ghost3", "bad", "10.0.1.1"), "locked"),
        (("carl", "carl-pass-1", "10.0.1.1"), "locked"),  # a good login from that address
        (("carl", "carl-pass-1", "10.0.1.2"), "ok"),  # the same user elsewhere
    ],
    "success-resets-the-count": [
        (("cora", "bad", "10.0.2.1"), "wrong"),
        (("cora", "bad", "10.0.2.1"), "wrong"),
        (("cora", "cora-pass-1", "10.0.2.1"), "ok"),
        (("cora", "bad", "10.0.2.1"), "wrong"),
        (("cora", "bad", "10.0.2.1"), "wrong"),
        (("cora", "cora-pass-1", "10.0.2.1"), "ok"),
    ],
}


@pytest.mark.parametrize("url", [SESSION, TOKEN], ids=["session", "token"])
@pytest.mark.parametrize("case", list(CASES))
def test_lockout(cast: Any, url: str, case: str) -> None:
    seen = [_outcome(url, _login(url, *attempt)) for attempt, _ in CASES[case]]
    assert seen == [expected for _, expected in CASES[case]]


@pytest.mark.parametrize("url", [SESSION, TOKEN], ids=["session", "token"])
def test_lockout_is_audited(cast: Any, url: str) -> None:
    for ip in ("10.0.3.1", "10.0.3.2", "10.0.3.3", "10.0.3.4"):
        _login(url, "cora", "bad", ip)
    events = AuditEvent.objects.filter(event_type="login_locked_out").order_by("id")
    # the third failure locks; the fourth attempt is refused while locked out
    assert [(e.actor_label, e.payload["ip"]) for e in events] == [
        ("cora", "10.0.3.3"),
        ("cora", "10.0.3.4"),
    ]
    assert all(e.payload["path"] == url and e.actor is None for e in events)
    assert AuditEvent.objects.filter(event_type="login_failed").count() == 4


def test_lockout_ends_after_the_cooloff(cast: Any) -> None:
    from axes.models import AccessAttempt
    from django.utils import timezone

    for _ in range(LIMIT):
        _login(TOKEN, "cora", "bad", "10.0.4.1")
    assert _outcome(TOKEN, _login(TOKEN, "cora", "cora-pass-1", "10.0.4.1")) == "locked"
    AccessAttempt.objects.update(attempt_time=timezone.now() - timezone.timedelta(minutes=16))
    assert _outcome(TOKEN, _login(TOKEN, "cora", "cora-pass-1", "10.0.4.1")) == "ok"


def test_admin_login_is_locked_too(cast: Any) -> None:
    for _ in range(LIMIT):
        _login("/admin/login/", "ada", "bad", "10.0.5.1")
    response = _login("/admin/login/", "ada", "ada-pass-1", "10.0.5.9")
    assert response.status_code == 429


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "expected"),
    [
        (0, "10.1.1.1", "6.6.6.6", "10.1.1.1"),  # no proxy: the header is the client's lie
        (1, "10.9.9.9", "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # one proxy appended
        (2, "10.9.9.9", "6.6.6.6, 203.0.113.7, 10.8.8.8", "203.0.113.7"),
        (1, "10.9.9.9", "", "10.9.9.9"),  # header missing: the socket address
        (3, "10.9.9.9", "203.0.113.7", "10.9.9.9"),  # fewer hops than proxies
    ],
)
def test_client_ip(
    settings: Any, rf: Any, proxies: int, remote: str, forwarded: str, expected: str
) -> None:
    settings.LESIONLOOP_PROXY_COUNT = proxies
    request = rf.get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected
