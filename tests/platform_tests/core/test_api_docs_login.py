"""The OpenAPI schema and its docs page need a login (session or token)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/api/schema/", "/api/schema/?format=json"])
def test_schema_refuses_anonymous(url: str) -> None:
    response = Client().get(url)
    assert response.status_code in (401, 403)
    body = yaml.safe_load(response.content)  # the error in the schema's own format
    assert body["code"] == "not_authenticated" and body["detail"]
    assert b"/api/studies/" not in response.content


def test_docs_page_sends_a_browser_to_the_login() -> None:
    response = Client().get("/api/docs/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/api/docs/"


@pytest.mark.parametrize("how", ["session", "token"])
def test_logged_in_users_read_schema_and_docs(cast: Any, how: str) -> None:
    from lesionloop.accounts.services import token_for

    client = Client()
    if how == "session":
        client.force_login(cast.auditor)
    else:
        client.defaults["HTTP_AUTHORIZATION"] = f"Token {token_for(user=cast.auditor)}"
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    assert "/api/studies/" in schema.json()["paths"]
    if how == "session":
        docs = client.get("/api/docs/")
        assert docs.status_code == 200 and b"swagger" in docs.content.lower()
