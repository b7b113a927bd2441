"""manage.py promote / rollback / retrain: the same rules as the API."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from lesionloop.registry.models import ModelVersion


def test_promote_and_rollback_commands(cast: Any, versions: Any) -> None:
    out = StringIO()
    call_command("promote", "v2", "--user", "ada", stdout=out)
    assert "v2 is now active" in out.getvalue()
    call_command("rollback", str(versions.v1.pk), "--reason", "back", stdout=out)
    assert ModelVersion.objects.get(status="active").name == "v1"


def test_promote_worse_needs_override_reason(cast: Any, versions: Any) -> None:
    versions.make("v4", "candidate", versions.v1, dsc=0.1, small_sensitivity=0.1)
    with pytest.raises(CommandError, match="worse than the active version"):
        call_command("promote", "v4")
    call_command("promote", "v4", "--override-reason", "checked by hand", stdout=StringIO())
    assert ModelVersion.objects.get(status="active").promotion_note == "checked by hand"


@pytest.mark.parametrize(
    "args", [["promote", "v99"], ["rollback", "nope"], ["promote", "v2", "--user", "ghost"]]
)
def test_command_errors(cast: Any, versions: Any, args: list[str]) -> None:
    with pytest.raises(CommandError):
        call_command(*args)


def test_retrain_no_wait_queues_a_run(cast: Any, monkeypatch: Any) -> None:
    from lesionloop.training import services

    monkeypatch.setattr(services, "training_run_enqueue", lambda rid, delay_ms=None: None)
    out = StringIO()
    call_command("retrain", "--no-wait", "--user", "ada", stdout=out)
    assert "queued" in out.getvalue()
    with pytest.raises(CommandError, match="already in progress"):
        call_command("retrain", "--no-wait")
