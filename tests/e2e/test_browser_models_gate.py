"""The models page in a real browser: which gate set the numbers come from, versions
scored on another set shown as not comparable (never green or red), and the review
effort column."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.browser_data import active_model_version
from tests.e2e.browser_helpers import shot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _effort(version: Any, reviewer: Any, **counts: Any) -> None:
    """One reviewed study of ``version`` (rows only: the effort itself is computed and
    tested in tests/platform_tests/review/test_effort.py)."""
    from lesionloop.review.models import Approval, MaskRevision, ReviewEffort
    from lesionloop.studies.models import Study

    study = Study.objects.create(patient_label="GATE-E2E", status="approved")
    revision = MaskRevision.objects.create(
        study=study, number=1, file="x", sha256="0" * 64, author_label="model"
    )
    approval = Approval.objects.create(study=study, revision=revision, approved_by=reviewer)
    ReviewEffort.objects.create(
        approval=approval, study=study, model_version=version, reviewer=reviewer, **counts
    )


def test_models_page_shows_gate_set_and_review_effort(cast: Any, browser_login: Any) -> None:
    from django.utils import timezone

    from lesionloop.registry import services as registry
    from lesionloop.registry.models import GateScore, ModelVersion

    v1 = active_model_version(name="v1")
    v2 = ModelVersion.objects.create(
        name="v2",
        parent=v1,
        status="candidate",
        preset="lite",
        weights_dir="models/v2",
        metrics={"dsc": 0.99, "small_sensitivity": 0.99},  # validation: never shown
    )
    member = {"snapshot_dir": "x", "stratum": "<100", "n_lesions": 2}
    old = registry.gate_set_version_grow(new_members=[{**member, "study_id": 1}])
    current = registry.gate_set_version_grow(
        new_members=[{**member, "study_id": 2, "n_lesions": 3}]
    )
    groups = {
        g: {
            "n_lesions": 0,
            "n_detected": 0,
            "sensitivity": None,
            "fp_per_study": 0.0,
            "lesion_dice": None,
        }
        for g in ("<100", "100-500", "500-1500")
    }
    groups[">1500"] = {
        "n_lesions": 4,
        "n_detected": 3,
        "sensitivity": 0.75,
        "fp_per_study": 0.5,
        "lesion_dice": 0.61,
    }
    metrics = {
        "dsc": 0.8,
        "small_sensitivity": 0.5,
        "large_sensitivity": 1.0,
        "fp_per_study": 0.5,
        "size_groups": groups,
    }
    GateScore.objects.create(
        model_version=v1,
        gate_set=current,
        status="done",
        metrics=metrics,
        finished_at=timezone.now(),
    )
    GateScore.objects.create(
        model_version=v2,
        gate_set=old,
        status="done",
        metrics={**metrics, "dsc": 0.9},
        finished_at=timezone.now(),
    )
    GateScore.objects.create(model_version=v2, gate_set=current, status="queued")
    _effort(
        v1,
        cast.clinician,
        model_lesions=4,
        accepted_unchanged=2,
        edited=1,
        rejected=1,
        added=1,
        voxels_added=30,
        voxels_removed=10,
        active_seconds=150.0,
    )

    page = browser_login("ada", "ada-pass-1", next_path="/models/")
    page.wait_for_selector("#versions tbody tr[data-id]")
    page.wait_for_function("document.getElementById('gate-box').textContent.includes('gate set')")
    assert "gate set v2 (2 studies, 5 lesions)" in page.locator("#gate-box").inner_text()
    row1 = page.locator(f'#versions tr[data-id="{v1.pk}"]')
    row2 = page.locator(f'#versions tr[data-id="{v2.pk}"]')
    assert "0.800" in row1.inner_text()
    effort = row1.locator("td.effort").inner_text()
    assert "50% unchanged" in effort and "2.5 min/study" in effort and "40 vox changed" in effort
    # v2: scored on gate set v1 only, re-scoring queued: shown, greyed, never compared.
    assert "not comparable (gate set v1; re-scoring on v2" in row2.inner_text()
    assert "0.900" in row2.inner_text() and "0.990" not in row2.inner_text()
    assert row2.locator(".metric-good, .metric-bad").count() == 0
    assert row2.locator("td.effort").inner_text() == "—"
    assert "scored on gate set v2" in page.locator("#metrics-legend").inner_text()
    # Per size group, only for versions scored on the current set.
    sizes = page.locator("#size-groups")
    assert sizes.locator(f'tr[data-id="{v2.pk}"]').count() == 0
    assert "0.75 (3/4) · 0.50 · 0.61" in sizes.locator(f'tr[data-id="{v1.pk}"]').inner_text()
    shot(page, "models-gate-set")
    assert not page.js_errors, page.js_errors
