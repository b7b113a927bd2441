"""A real browser on the login page: repeated wrong passwords lock the account, the page
says why (status 429), and the right password is refused until the cool-off ends."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.browser_helpers import VIEWPORT

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_login_page_locks_out_and_says_why(
    cast: Any, browser_chromium: Any, live_server: Any, settings: Any
) -> None:
    from lesionloop.audit.models import AuditEvent

    settings.AXES_FAILURE_LIMIT = 3
    context = browser_chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    statuses = []
    for password in ("wrong-1", "wrong-2", "wrong-3", "cora-pass-1"):
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", "cora")
        page.fill("input[name=password]", password)
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.click("button[type=submit]")
        statuses.append(posted.value.status)
        alert = page.locator("[role=alert]").inner_text()
        if password == "wrong-1":
            assert alert == "Wrong username or password."
    # the third failure locks; then even the right password gets the lock-out page
    assert statuses == [200, 200, 429, 429]
    assert "Too many failed logins" in alert and "15 minutes" in alert
    assert page.locator("input[name=password]").is_visible()  # still a usable login page
    assert "/accounts/login/" in page.url
    assert AuditEvent.objects.filter(event_type="login_locked_out", actor_label="cora").count() == 2
    context.close()
