"""Shared fixtures: a small named cast of users, built once per test that asks."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def cast(db: Any) -> Any:
    """A clinician, an admin, an auditor and a user with no role."""
    from django.contrib.auth.models import User

    from lesionloop.accounts.services import user_create

    class Cast:
        clinician = user_create(username="cora", password="cora-pass-1", role="clinician")
        clinician2 = user_create(username="carl", password="carl-pass-1", role="clinician")
        admin = user_create(username="ada", password="ada-pass-1", role="admin")
        auditor = user_create(username="otto", password="otto-pass-1", role="auditor")
        nobody = User.objects.create_user(username="nemo", password="nemo-pass-1")

    return Cast


@pytest.fixture
def api(cast: Any) -> Any:
    """An API client factory: ``api(cast.clinician)``; ``api(None)`` is anonymous."""
    from rest_framework.test import APIClient

    def make(user: Any) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user=user)
        return client

    return make
