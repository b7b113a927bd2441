"""The viewer's pages: login required, roles decide which pages open."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db

PAGES = ["/", "/studies/1/", "/models/", "/audit/", "/audit/studies/1/", "/audit/models/1/"]


@pytest.mark.parametrize("url", PAGES)
def test_pages_need_login(client: Any, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_roles_decide_which_pages_open(client: Any, cast: Any) -> None:
    expected = {
        cast.clinician: {
            "/": 200,
            "/studies/1/": 200,
            "/models/": 200,
            "/audit/": 403,
            "/audit/studies/1/": 403,
        },
        cast.auditor: {
            "/": 200,
            "/studies/1/": 200,
            "/models/": 200,
            "/audit/": 200,
            "/audit/models/1/": 200,
        },
        cast.admin: {"/": 200, "/models/": 200, "/audit/": 200, "/audit/studies/1/": 200},
        cast.nobody: {"/": 403, "/studies/1/": 403, "/audit/": 403},
    }
    for user, pages in expected.items():
        client.force_login(user)
        for url, status in pages.items():
            assert client.get(url).status_code == status, (user.username, url)


def test_models_page_controls_only_for_admins(client: Any, cast: Any) -> None:
    client.force_login(cast.clinician)
    assert b'id="start-training"' not in client.get("/models/").content
    client.force_login(cast.admin)
    assert b'id="start-training"' in client.get("/models/").content


def test_case_page_marks_editing_by_role(client: Any, cast: Any) -> None:
    client.force_login(cast.auditor)
    assert b'data-editable="0"' in client.get("/studies/1/").content
    client.force_login(cast.clinician)
    assert b'data-editable="1"' in client.get("/studies/1/").content
