"""Failed logins are recorded (user_login_failed signal), session and token alike."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from lesionloop.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/accounts/login/", {"username": "cora", "password": "wrong"}),
        ("/api/auth/token/", {"username": "cora", "password": "wrong"}),
    ],
)
def test_failed_login_is_audited(cast: Any, url: str, data: dict) -> None:
    Client().post(url, data)
    event = AuditEvent.objects.get(event_type="login_failed")
    assert event.actor is None and event.actor_label == "cora"
    assert event.payload["username"] == "cora" and "password" not in event.payload
