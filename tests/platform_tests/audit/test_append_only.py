"""AuditEvent is append-only: PostgreSQL refuses UPDATE and DELETE."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from lesionloop.audit.models import AuditEvent
from lesionloop.audit.services import audit_record

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "change",
    [
        lambda pk: AuditEvent.objects.filter(pk=pk).update(event_type="forged"),
        lambda pk: AuditEvent.objects.filter(pk=pk).delete(),
        lambda pk: connection.cursor().execute(
            "UPDATE audit_auditevent SET payload='{}' WHERE id=%s", [pk]
        ),
        lambda pk: connection.cursor().execute("DELETE FROM audit_auditevent WHERE id=%s", [pk]),
    ],
    ids=["orm-update", "orm-delete", "sql-update", "sql-delete"],
)
def test_database_refuses_changes(change: Any) -> None:
    assert connection.vendor == "postgresql"
    event = audit_record(event_type="probe", answer=42)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        change(event.pk)
    event.refresh_from_db()
    assert event.event_type == "probe" and event.payload == {"answer": 42}


def test_record_takes_instances_or_ids_and_stores_json(cast: Any) -> None:
    from pathlib import Path

    from tests.platform_tests.studies.helpers import make_study

    study = make_study()
    event = audit_record(
        event_type="x",
        actor=cast.clinician,
        study=study.pk,
        model_version=study.model_version,
        path=Path("/a/b"),
        when=study.created_at,
    )
    event.refresh_from_db()
    assert event.actor == cast.clinician and event.actor_label == "cora"
    assert event.study_id == study.pk and event.model_version_id == study.model_version_id
    assert event.payload["path"] == "/a/b" and isinstance(event.payload["when"], str)
