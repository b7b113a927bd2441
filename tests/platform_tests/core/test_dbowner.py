"""``migrate`` (and ``db_roles --apply``) connect as the owner role of DATABASE_OWNER_URL,
a real second login to PostgreSQL; the app's connection is back afterwards."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from lesionloop.core.dbowner import owner_connection


def _sql(statement: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement)


def _current_user() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        return cursor.fetchone()[0]


@pytest.fixture
def owner_url(transactional_db: Any, settings: Any) -> Any:
    """A committed LOGIN role that can read the schema (roles are cluster-wide: a unique
    name, dropped afterwards)."""
    role = f"ll_owner_{uuid.uuid4().hex[:12]}"
    _sql(f'CREATE ROLE "{role}" LOGIN')
    _sql(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
    db = connection.settings_dict
    settings.DATABASE_OWNER_URL = (
        f"postgres://{role}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    yield role
    connection.close()
    _sql(f'DROP OWNED BY "{role}"')
    _sql(f'DROP ROLE "{role}"')


def test_owner_connection_switches_and_restores(owner_url: str) -> None:
    app_user = _current_user()
    with owner_connection() as as_owner:
        assert as_owner and _current_user() == owner_url
    assert _current_user() == app_user != owner_url


def test_migrate_runs_as_the_owner(owner_url: str) -> None:
    out = io.StringIO()
    call_command("migrate", verbosity=1, stdout=out, interactive=False)
    assert "Migrating as the owner role" in out.getvalue()
    assert "No migrations to apply" in out.getvalue()


@pytest.mark.django_db
def test_without_owner_url_nothing_changes(settings: Any) -> None:
    settings.DATABASE_OWNER_URL = ""
    user = _current_user()
    with owner_connection() as as_owner:
        assert not as_owner and _current_user() == user
    out = io.StringIO()
    call_command("migrate", verbosity=1, stdout=out, interactive=False)
    assert "owner role" not in out.getvalue()


@pytest.mark.parametrize(
    ("owner_url", "ok"),
    [
        ("postgres://owner:pw@db:5432/lesionloop", True),
        ("postgres://owner:pw@db:5432/otherdb", False),  # another database
        ("sqlite:///tmp/x.sqlite3", False),  # another engine
    ],
)
def test_settings_refuse_an_owner_url_for_another_database(owner_url: str, ok: bool) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    env = {
        **os.environ,
        "PYTHONPATH": f"{root / 'platform'}{os.pathsep}{root}",
        "DJANGO_SETTINGS_MODULE": "lesionloop.settings.dev",
        "DATABASE_URL": "postgres://app:pw@db:5432/lesionloop",
        "DATABASE_OWNER_URL": owner_url,
    }
    code = "from django.conf import settings; print(settings.DATABASE_OWNER_URL)"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert (result.returncode == 0) == ok, result.stderr[-2000:]
    if not ok:
        assert "DATABASE_OWNER_URL must name the same PostgreSQL database" in result.stderr
