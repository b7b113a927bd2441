"""demo_data: imports synthetic studies once, queues a first training, then is quick."""

from __future__ import annotations

import time
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.slow


def test_demo_data_is_idempotent(cast: Any, settings: Any, tmp_path: Any, monkeypatch: Any) -> None:
    from lesionloop.studies.models import Study
    from lesionloop.training import selectors, services
    from lesionloop.training.models import TrainingRun

    settings.LESIONLOOP_GRID = "tiny"
    settings.VAR_DIR = tmp_path / "var"
    settings.STORAGE_ROOT = tmp_path / "storage"
    monkeypatch.setattr(services, "training_run_enqueue", lambda rid, delay_ms=None: None)
    call_command("demo_data", "--train", "2", "--review", "1", stdout=StringIO())
    assert Study.objects.filter(status="approved").count() == 2
    assert Study.objects.filter(status="awaiting_model").count() == 1
    assert len(selectors.training_case_records()) == 2
    run = TrainingRun.objects.get()
    assert run.trigger == "demo" and run.started_by == cast.admin and run.status == "queued"
    t0 = time.monotonic()
    out = StringIO()
    call_command("demo_data", "--train", "2", "--review", "1", stdout=out)
    assert time.monotonic() - t0 < 5
    assert "0 studies imported now" in out.getvalue()
    assert Study.objects.count() == 3 and TrainingRun.objects.count() == 1
