"""``docker/postgres/init-roles.sh`` on real PostgreSQL, as compose uses it.

The script runs as the postgres image's entrypoint would (the superuser, ``POSTGRES_DB``
already created, the passwords in the environment); then ``manage.py migrate`` runs as the
owner role it made (``DATABASE_OWNER_URL``) and ``db_roles --grants-only --apply`` as the
owner, exactly the ``migrate`` service's command; then the app role, over its own login,
uses the application through Django and is refused every change to the audit trail.
Roles are cluster-wide: every name is unique per run, and the database and roles are
dropped afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dj_database_url
import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docker" / "postgres" / "init-roles.sh"
SERVER = dj_database_url.parse(
    os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lesionloop")
)
pytestmark = pytest.mark.skipif(
    "postgresql" not in SERVER["ENGINE"], reason="needs PostgreSQL (DATABASE_URL)"
)


@dataclass(frozen=True)
class Deployment:
    database: str
    owner: str
    app: str
    owner_password: str
    app_password: str

    def url(self, role: str, password: str) -> str:
        host, port = SERVER["HOST"] or "127.0.0.1", SERVER["PORT"] or 5432
        return f"postgres://{role}:{password}@{host}:{port}/{self.database}"

    def connect(self, role: str, password: str) -> psycopg.Connection:
        return psycopg.connect(self.url(role, password), autocommit=True)


def _superuser(dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(
        host=SERVER["HOST"] or "127.0.0.1",
        port=SERVER["PORT"] or 5432,
        user=SERVER["USER"] or "postgres",
        password=SERVER["PASSWORD"] or None,
        dbname=dbname,
        autocommit=True,
    )


def _stored_password(conn: psycopg.Connection, role: str) -> str:
    (stored,) = conn.execute(
        "SELECT rolpassword FROM pg_authid WHERE rolname = %s", [role]
    ).fetchone()
    return stored or ""


def _scram_matches(stored: str, password: str) -> bool:
    """Whether a ``SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey`` verifier is of
    ``password`` (RFC 5802 section 3, RFC 7677; ASCII passwords need no SASLprep)."""
    match = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)", stored)
    if not match:
        return False
    iterations, salt, stored_key, server_key = match.groups()
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return hashlib.sha256(client_key).digest() == base64.b64decode(stored_key) and (
        hmac.new(salted, b"Server Key", "sha256").digest() == base64.b64decode(server_key)
    )


def _run_script(deployment: Deployment, **overrides: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PGHOST": SERVER["HOST"] or "127.0.0.1",
        "PGPORT": str(SERVER["PORT"] or 5432),
        "PGPASSWORD": SERVER["PASSWORD"] or "",
        "POSTGRES_USER": SERVER["USER"] or "postgres",
        "POSTGRES_DB": deployment.database,
        "LESIONLOOP_OWNER_ROLE": deployment.owner,
        "LESIONLOOP_APP_ROLE": deployment.app,
        "LESIONLOOP_OWNER_PASSWORD": deployment.owner_password,
        "LESIONLOOP_APP_PASSWORD": deployment.app_password,
        **overrides,
    }
    env = {key: value for key, value in env.items() if value != "<unset>"}
    return subprocess.run(
        [str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _manage(deployment: Deployment, *args: str, as_owner: bool = False) -> str:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "lesionloop.settings.test",
        "DATABASE_URL": deployment.url(deployment.app, deployment.app_password),
        "DATABASE_OWNER_URL": (
            deployment.url(deployment.owner, deployment.owner_password) if as_owner else ""
        ),
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
    return result.stdout


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    """A fresh database, as the image's entrypoint creates POSTGRES_DB before the init
    scripts run (owned by the superuser); dropped with both roles afterwards."""
    tag = uuid.uuid4().hex[:10]
    found = Deployment(
        database=f"ll_init_{tag}",
        owner=f"ll_init_owner_{tag}",
        app=f"ll_init_app_{tag}",
        owner_password=f"owner-{uuid.uuid4().hex}",
        app_password=f"app-{uuid.uuid4().hex}",
    )
    with _superuser() as conn:
        conn.execute(f'CREATE DATABASE "{found.database}"')
    try:
        yield found
    finally:
        with _superuser() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{found.database}" WITH (FORCE)')
            for role in (found.app, found.owner):
                conn.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def migrated(deployment: Deployment) -> Deployment:
    """The script, then the ``migrate`` service's two commands, as compose runs them."""
    result = _run_script(deployment)
    assert result.returncode == 0, result.stderr
    for secret in (deployment.owner_password, deployment.app_password):
        assert secret not in result.stdout + result.stderr
    assert "Migrating as the owner role" in _manage(
        deployment, "migrate", "--noinput", as_owner=True
    )
    out = _manage(
        deployment,
        "db_roles",
        "--app-role",
        deployment.app,
        "--owner-role",
        deployment.owner,
        "--grants-only",
        "--apply",
        as_owner=True,
    )
    assert f"Role {deployment.app} confined" in out
    return deployment


def test_roles_ownership_and_passwords(migrated: Deployment) -> None:
    d = migrated
    with _superuser(d.database) as conn:
        rows = conn.execute(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolcanlogin, "
            "rolpassword IS NOT NULL FROM pg_authid WHERE rolname = ANY(%s)",
            [[d.owner, d.app]],
        ).fetchall()
        roles = {row[0]: row[1:] for row in rows}
        # not superuser, CREATEROLE, CREATEDB or BYPASSRLS; can log in; has a password
        assert roles == {
            d.owner: (False, False, False, False, True, True),
            d.app: (False, False, False, False, True, True),
        }
        owners = conn.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        assert owners == [(d.owner,)]
        (db_owner,) = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", [d.database]
        ).fetchone()
        assert db_owner == d.owner
        # the stored verifiers are of the passwords given (a trust rule in pg_hba.conf
        # would let any password log in, so the hash is checked instead)
        for role, password in ((d.owner, d.owner_password), (d.app, d.app_password)):
            assert _scram_matches(_stored_password(conn, role), password), role


APP_USES_THE_APP = """
from lesionloop.accounts.services import user_create
from lesionloop.audit.models import AuditEvent
from lesionloop.audit.services import audit_record
from lesionloop.studies.models import Study
from django.db import connection

user = user_create(username="init-roles-clinician", password="pw-init-roles-1", role="clinician")
study = Study.objects.create(patient_label="P-INIT", description="init-roles check")
Study.objects.filter(pk=study.pk).update(description="changed")
audit_record(event_type="init_roles_probe", actor=user, study=study)
with connection.cursor() as cursor:
    cursor.execute("SELECT current_user")
    print("user", cursor.fetchone()[0])
print("events", AuditEvent.objects.filter(event_type="init_roles_probe").count())
"""

AUDIT = "audit_auditevent"
# What the app role must not do to the audit trail, and PostgreSQL's answer.
REFUSED = [
    ("update", f"UPDATE {AUDIT} SET event_type = 'forged'", "permission denied"),
    ("delete", f"DELETE FROM {AUDIT}", "permission denied"),
    ("truncate", f"TRUNCATE {AUDIT}", "permission denied"),
    ("disable-trigger", f"ALTER TABLE {AUDIT} DISABLE TRIGGER ALL", "must be owner"),
    ("replica-mode", "SET session_replication_role = replica", "permission denied"),
    ("create-table", "CREATE TABLE shadow_audit (id int)", "permission denied"),
    ("create-role", "CREATE ROLE ll_should_not_exist", "permission denied"),
]


def test_app_role_uses_the_app_and_cannot_change_the_audit_trail(migrated: Deployment) -> None:
    d = migrated
    out = _manage(d, "shell", "-c", APP_USES_THE_APP)
    assert f"user {d.app}" in out and "events 1" in out, out
    with d.connect(d.app, d.app_password) as conn:
        (count,) = conn.execute(f"SELECT count(*) FROM {AUDIT}").fetchone()
        assert count >= 1
        conn.execute(
            f"INSERT INTO {AUDIT} (created_at, event_type, payload, actor_label) "
            "VALUES (now(), 'raw_insert', '{}'::jsonb, '')"
        )
        refused = {}
        for name, statement, _ in REFUSED:
            try:
                conn.execute(statement)
                refused[name] = "ALLOWED"
            except psycopg.Error as exc:
                refused[name] = str(exc)
        (after,) = conn.execute(f"SELECT count(*) FROM {AUDIT}").fetchone()
    for name, _, error in REFUSED:
        assert error in refused[name], (name, refused[name])
    assert after == count + 1  # nothing removed, the raw insert kept
    # the owner runs migrations but cannot TRUNCATE the trail either (the trigger)
    with d.connect(d.owner, d.owner_password) as conn, pytest.raises(psycopg.Error) as exc:
        conn.execute(f"TRUNCATE {AUDIT} CASCADE")
    assert "append-only: TRUNCATE refused" in str(exc.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"LESIONLOOP_OWNER_PASSWORD": "<unset>"}, "set LESIONLOOP_OWNER_PASSWORD"),
        ({"LESIONLOOP_APP_PASSWORD": ""}, "LESIONLOOP_APP_PASSWORD"),
        ({"LESIONLOOP_APP_ROLE": "<same>"}, "must differ"),
    ],
)
def test_script_refuses_missing_passwords_and_one_role(
    deployment: Deployment, overrides: dict[str, str], message: str
) -> None:
    overrides = {
        key: deployment.owner if value == "<same>" else value for key, value in overrides.items()
    }
    result = _run_script(deployment, **overrides)
    assert result.returncode != 0
    assert message in result.stderr
    with _superuser() as conn:
        made = conn.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s)",
            [[deployment.owner, deployment.app]],
        ).fetchone()
    assert made == (0,)


def test_script_is_idempotent_and_changes_passwords(deployment: Deployment) -> None:
    assert _run_script(deployment).returncode == 0
    changed = Deployment(**{**deployment.__dict__, "app_password": "app-rotated-1"})
    result = _run_script(changed)
    assert result.returncode == 0, result.stderr
    with _superuser() as conn:
        stored = _stored_password(conn, deployment.app)
        assert _scram_matches(_stored_password(conn, deployment.owner), deployment.owner_password)
    assert _scram_matches(stored, "app-rotated-1")
    assert not _scram_matches(stored, deployment.app_password)
