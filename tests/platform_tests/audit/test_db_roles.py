"""The two database roles on real PostgreSQL: the app role (``audit.roles.app_role_sql``)
may only INSERT and SELECT the audit trail and cannot switch its triggers off, while the
application's other tables stay writable; TRUNCATE is refused to the owner too.

``SET ROLE`` drops the test's superuser rights for the block: every check below runs with
the privileges of the role alone. Everything happens in the test's transaction and is
rolled back (roles are cluster-wide, so the names are unique per run).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction

from lesionloop.audit.models import AuditEvent
from lesionloop.audit.roles import app_role_sql, audit_table, quote_ident
from lesionloop.audit.services import audit_record

pytestmark = pytest.mark.django_db


def _sql(statement: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _table_owner() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableowner FROM pg_tables WHERE tablename = %s", [audit_table()])
        return cursor.fetchone()[0]


@pytest.fixture
def as_role() -> Iterator[Callable[[str], None]]:
    """``as_role(name)``: SET ROLE for the rest of the test (reset afterwards)."""
    yield lambda name: _sql(f"SET ROLE {quote_ident(name, what='role')}")
    try:
        _sql("RESET ROLE")
    except DatabaseError:
        pass  # a failed test aborted the transaction: its rollback resets the role


@pytest.fixture
def app_role() -> str:
    name = f"ll_app_{uuid.uuid4().hex[:12]}"
    database = connection.settings_dict["NAME"]
    for statement in app_role_sql(app_role=name, owner_role=_table_owner(), database=database):
        _sql(statement)
    return name


AUDIT = audit_table()
# What the app role must not do to the audit trail, and the error PostgreSQL gives.
REFUSED = {
    "update": (f"UPDATE {AUDIT} SET event_type = 'forged'", "permission denied"),
    "delete": (f"DELETE FROM {AUDIT}", "permission denied"),
    "truncate": (f"TRUNCATE {AUDIT}", "permission denied"),
    "disable-trigger": (f"ALTER TABLE {AUDIT} DISABLE TRIGGER ALL", "must be owner"),
    "drop-trigger": (
        f"DROP TRIGGER audit_auditevent_append_only ON {AUDIT}",
        "must be owner",
    ),
    "drop-table": (f"DROP TABLE {AUDIT}", "must be owner"),
    "replica-mode": ("SET session_replication_role = replica", "permission denied"),
    "create-table": ("CREATE TABLE shadow_audit (id int)", "permission denied"),
}


@pytest.mark.parametrize("change", list(REFUSED))
def test_app_role_cannot_change_the_audit_trail(app_role: str, as_role: Any, change: str) -> None:
    event = audit_record(event_type="probe", answer=42)
    as_role(app_role)
    statement, error = REFUSED[change]
    with pytest.raises(DatabaseError, match=error), transaction.atomic():
        _sql(statement)
    # still there, unchanged, and the app role can append and read
    assert AuditEvent.objects.get(pk=event.pk).event_type == "probe"
    audit_record(event_type="after", answer=1)
    assert list(AuditEvent.objects.values_list("event_type", flat=True)) == ["probe", "after"]


def _user_rows() -> None:
    user = User.objects.create_user(username="temp-role-check", password="x-pass-1")
    User.objects.filter(pk=user.pk).update(first_name="changed")
    assert User.objects.get(pk=user.pk).first_name == "changed"
    user.delete()


def _study_rows() -> None:
    from lesionloop.studies.models import Study

    study = Study.objects.create(patient_label="P-ROLE", description="role check")
    Study.objects.filter(pk=study.pk).update(description="changed")
    Study.objects.filter(pk=study.pk).delete()


def _training_rows() -> None:
    from lesionloop.training.models import TrainingRun

    run = TrainingRun.objects.create(status="queued")
    TrainingRun.objects.filter(pk=run.pk).update(status="failed")
    run.delete()


def _lockout_rows() -> None:
    from axes.models import AccessAttempt
    from django.utils import timezone

    AccessAttempt.objects.create(
        username="u",
        ip_address="10.0.0.1",
        user_agent="t",
        attempt_time=timezone.now(),
        failures_since_start=1,
    )
    AccessAttempt.objects.all().delete()


@pytest.mark.parametrize("write", [_user_rows, _study_rows, _training_rows, _lockout_rows])
def test_app_role_writes_the_other_tables(
    app_role: str, as_role: Any, write: Callable[[], None]
) -> None:
    as_role(app_role)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
        )
        assert cursor.fetchone() == (app_role, False)
    write()


def test_app_role_sql_refuses_odd_names() -> None:
    with pytest.raises(ValueError, match="app role"):
        app_role_sql(app_role='x"; DROP TABLE y; --', owner_role="o", database="d")
    with pytest.raises(ValueError, match="must not be the owner"):
        app_role_sql(app_role="same", owner_role="same", database="d")


def test_truncate_is_refused_to_the_owner(as_role: Any) -> None:
    """The trigger stops a non-superuser owner (the migration role) from TRUNCATE."""
    owner = f"ll_owner_{uuid.uuid4().hex[:12]}"
    _sql(f"CREATE ROLE {quote_ident(owner, what='role')}")
    _sql(f"ALTER TABLE {AUDIT} OWNER TO {quote_ident(owner, what='role')}")
    audit_record(event_type="probe")
    _sql("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks: TRUNCATE reaches the trigger
    as_role(owner)
    with pytest.raises(DatabaseError, match="append-only: TRUNCATE refused"), transaction.atomic():
        _sql(f"TRUNCATE {AUDIT}")
    assert AuditEvent.objects.filter(event_type="probe").count() == 1


class _Undo(Exception):
    pass


def test_a_superuser_may_truncate_for_the_test_runners_flush() -> None:
    audit_record(event_type="probe")
    _sql("SET CONSTRAINTS ALL IMMEDIATE")
    with pytest.raises(_Undo), transaction.atomic():
        _sql(f"TRUNCATE {AUDIT} CASCADE")
        assert not AuditEvent.objects.exists()
        raise _Undo
    assert AuditEvent.objects.filter(event_type="probe").count() == 1


def test_db_roles_command_prints_and_applies(as_role: Any) -> None:
    import io

    from django.core.management import call_command

    name = f"ll_app_{uuid.uuid4().hex[:12]}"
    out = io.StringIO()
    call_command("db_roles", "--app-role", name, stdout=out)
    printed = out.getvalue()
    assert f'GRANT SELECT, INSERT ON TABLE "public"."{AUDIT}" TO "{name}";' in printed
    assert not User.objects.filter(username=name).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [name])
        assert cursor.fetchone()[0] == 0  # printing changes nothing
    call_command("db_roles", "--app-role", name, "--apply", stdout=out)
    event = audit_record(event_type="probe")
    as_role(name)
    with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(event_type="forged")
    audit_record(event_type="appended")


# How the role is made unconfined before ``--grants-only``, and what the refusal names.
UNCONFINED = [
    ("missing", None, "does not exist"),
    ("superuser", "ALTER ROLE {app} SUPERUSER", "has SUPERUSER"),
    ("createrole", "ALTER ROLE {app} CREATEROLE", "has CREATEROLE"),
    ("createdb", "ALTER ROLE {app} CREATEDB", "has CREATEDB"),
    ("bypassrls", "ALTER ROLE {app} BYPASSRLS", "has BYPASSRLS"),
    ("member-of-owner", "GRANT {owner} TO {app}", "is a member of the owner role"),
]


@pytest.mark.parametrize(("case", "change", "error"), UNCONFINED, ids=[c[0] for c in UNCONFINED])
def test_grants_only_refuses_an_unconfined_role(case: str, change: str | None, error: str) -> None:
    from django.core.management import CommandError, call_command

    name = f"ll_app_{uuid.uuid4().hex[:12]}"
    owner = f"ll_owner_{uuid.uuid4().hex[:12]}"
    _sql(f'CREATE ROLE "{owner}"')
    if change is not None:
        _sql(f'CREATE ROLE "{name}" LOGIN')
        _sql(change.format(app=f'"{name}"', owner=f'"{owner}"'))
    args = ["--app-role", name, "--owner-role", owner, "--grants-only", "--apply"]
    with pytest.raises(CommandError, match=f"Refusing to grant: .*{error}"):
        call_command("db_roles", *args)
    if case not in {"missing", "superuser"}:  # a superuser has every privilege anyway
        with connection.cursor() as cursor:
            cursor.execute("SELECT has_table_privilege(%s, 'auth_user', 'INSERT')", [name])
            assert cursor.fetchone()[0] is False  # refused before any grant


def test_grants_only_grants_a_confined_role_and_alters_nothing(as_role: Any) -> None:
    from django.core.management import CommandError, call_command

    name = f"ll_app_{uuid.uuid4().hex[:12]}"
    _sql(f'CREATE ROLE "{name}" LOGIN CONNECTION LIMIT 7')
    out = io.StringIO()
    call_command("db_roles", "--app-role", name, "--grants-only", "--apply", stdout=out)
    assert "confined (10 statements)" in out.getvalue()
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", [name])
        assert cursor.fetchone()[0] == 7  # the role itself untouched
    with pytest.raises(CommandError, match="alters no role"):
        call_command(
            "db_roles", "--app-role", name, "--grants-only", "--apply", "--password-env", "PATH"
        )
    event = audit_record(event_type="probe")
    as_role(name)
    with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(event_type="forged")
    audit_record(event_type="appended")
