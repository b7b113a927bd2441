"""Models page: the versions table follows training runs (a cancelled run's version reads
cancelled) and "Start retraining" says how long it takes. Audit trail: the header says
the order the rows are in; a lineage names who promoted, or says it was automatic."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.browser_data import active_model_version
from tests.e2e.browser_helpers import shot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_versions_follow_the_run_and_start_shows_the_estimate(
    cast: Any, browser_login: Any, settings: Any, monkeypatch: Any
) -> None:
    from lesionloop.registry.models import ModelVersion
    from lesionloop.training import services
    from lesionloop.training.models import TrainingRun

    monkeypatch.setattr(services, "training_run_enqueue", lambda rid, delay_ms=None: None)
    settings.LESIONLOOP_TRAIN_MAX_MINUTES = 60
    v1 = active_model_version(name="v1")
    page = browser_login("ada", "ada-pass-1", next_path="/models/")
    page.wait_for_selector("#versions tbody tr[data-id]")
    page.wait_for_function("document.getElementById('training-estimate').textContent.length > 0")
    estimate = page.locator("#training-estimate").inner_text()
    assert "Takes about 46 min" in estimate and "after 42 min" in estimate, estimate

    # Another admin (or the loop) starts a run; the worker creates its version: the
    # table shows it without a reload.
    run = services.training_run_start(started_by=cast.admin)
    v2 = ModelVersion.objects.create(name="v2", parent=v1, status="training", preset="lite")
    TrainingRun.objects.filter(pk=run.pk).update(status="running", model_version=v2)
    row = f'#versions tr[data-id="{v2.pk}"]'
    page.wait_for_selector(row, timeout=15000)
    # It is cancelled: the version reads cancelled, not failed.
    TrainingRun.objects.filter(pk=run.pk).update(status="cancelled")
    ModelVersion.objects.filter(pk=v2.pk).update(status="cancelled")
    page.wait_for_selector(f"{row} .badge.st-cancelled", timeout=15000)
    assert page.locator(f"{row} .badge.st-failed").count() == 0
    shot(page, "models-cancelled-version")

    # Starting says how long it will take.
    page.click("#start-training")
    page.wait_for_function(
        "document.querySelector('#run-status .badge') && "
        "document.querySelector('#run-status .badge').textContent === 'queued'"
    )
    assert "about 46 min, at most 60" in page.locator("#toast").inner_text()
    assert TrainingRun.objects.filter(status="queued").count() == 1
    assert not page.js_errors, page.js_errors


def test_audit_header_matches_the_order_and_lineage_names_the_promoter(
    cast: Any, browser_login: Any
) -> None:
    from django.utils import timezone

    from lesionloop.audit.services import audit_record

    for name in ("first", "second", "third"):
        audit_record(event_type="login_failed", username=name)
        time.sleep(0.01)
    page = browser_login("otto", "otto-pass-1", next_path="/audit/?event_type=login_failed")
    page.wait_for_selector("#a-events tbody tr[data-type='login_failed']")
    assert page.locator("#a-order-note").inner_text() == "newest first"
    rows = page.locator("#a-events tbody tr td:nth-child(3)").all_inner_texts()
    assert rows == ["Failed login as third", "Failed login as second", "Failed login as first"]
    page.select_option("#a-order", "created_at")
    page.click("#a-apply")
    page.wait_for_function(
        "document.querySelector('#a-events tbody tr td:nth-child(3)').textContent.endsWith('first')"
    )
    assert page.locator("#a-order-note").inner_text() == "oldest first"

    auto = active_model_version(name="v1")
    auto.promoted_at, auto.promotion_note = timezone.now(), "first model (no active version)"
    auto.save()
    page.goto(f"{page.base}/audit/models/{auto.pk}/")
    page.wait_for_selector("#m-summary dd")
    promoted = page.locator("#m-summary dd >> nth=1").inner_text()
    assert "automatically" in promoted and " by " not in promoted.split("·")[0], promoted
    assert not page.js_errors, page.js_errors


def test_study_audit_and_worklist_show_mm3_and_diameters(cast: Any, browser_login: Any) -> None:
    from tests.e2e.browser_data import ready_study

    ready = ready_study(seed=13, n_lesions=2)
    lesions = ready.study.lesions.order_by("volume_mm3", "id")
    page = browser_login("otto", "otto-pass-1", next_path=f"/audit/studies/{ready.study.pk}/")
    page.wait_for_selector("#s-lesions table")
    headers = page.locator("#s-lesions th").all_inner_texts()
    assert headers[1:4] == ["Volume (mm³)", "Axial ⌀ (mm)", "3D ⌀ (mm)"]
    cells = page.locator("#s-lesions tbody tr >> nth=-1").locator("td").all_inner_texts()
    last = lesions.last()
    assert cells[1] == f"{last.volume_mm3:.0f}"  # mm³, whatever the size
    assert cells[2] == f"{last.longest_axial_diameter_mm:.1f}"
    assert cells[3] == f"{last.longest_diameter_mm:.1f}"
    page.goto(f"{page.base}/")
    page.wait_for_selector("#worklist tbody tr, table tbody tr")
    assert "Smallest (mm³)" in page.content() and "cm³" not in page.content()
    assert not page.js_errors, page.js_errors
