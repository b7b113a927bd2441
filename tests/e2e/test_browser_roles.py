"""An auditor cannot edit; an admin starts a retraining and watches its progress. (Two
sessions of one study: tests/e2e/test_browser_lease.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.browser_data import active_model_version, ready_study
from tests.e2e.browser_helpers import paint, shot, wait_case_ready

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_auditor_cannot_edit(cast: Any, browser_login: Any) -> None:
    from lesionloop.review.models import Lesion

    ready = ready_study(seed=13, n_lesions=2)
    study = ready.study
    page = browser_login("otto", "otto-pass-1", next_path=f"/studies/{study.pk}/")
    wait_case_ready(page)
    assert page.locator("#case.readonly").count() == 1
    for sel in ("#approve", "#save", "#new-lesion", '[data-tool="brush"]', "#accept", "#reject"):
        assert not page.locator(sel).is_visible(), sel
    assert page.locator("#c-lease").inner_text() == "Read-only"
    # Keyboard shortcuts do nothing either.
    page.click("#lesion-list li >> nth=0")
    page.keyboard.press("a")
    page.keyboard.press("x")
    assert set(Lesion.objects.filter(study=study).values_list("decision", flat=True)) == {"pending"}
    # And the server refuses the writes anyway.
    lesion = Lesion.objects.filter(study=study).first()
    status = page.evaluate(
        """async (url) => (await fetch(url, {method: 'PATCH', headers: {'Content-Type': 'application/json', 'X-CSRFToken': LL.csrfToken()}, body: JSON.stringify({decision: 'accepted'})})).status""",
        f"/api/studies/{study.pk}/lesions/{lesion.pk}/",
    )
    assert status == 403
    shot(page, "case-auditor")
    page.goto(f"{page.base}/models/")
    page.wait_for_selector("#readonly-note")
    assert page.locator("#start-training").count() == 0
    assert not page.js_errors, page.js_errors


def test_admin_starts_retraining_and_sees_progress(cast: Any, browser_login: Any) -> None:
    from lesionloop.registry.models import ModelVersion
    from lesionloop.training.models import TrainingRun

    v1 = active_model_version(name="v1")
    ModelVersion.objects.create(
        name="v2",
        parent=v1,
        status=ModelVersion.Status.CANDIDATE,
        preset="lite",
        metrics={
            "dsc": 0.74,
            "small_sensitivity": 0.70,
            "large_sensitivity": 0.96,
            "fp_per_study": 0.6,
        },
    )
    _gate_scored(v1, ModelVersion.objects.get(name="v2"))
    page = browser_login("ada", "ada-pass-1", next_path="/models/")
    page.wait_for_selector("#versions tbody tr[data-id]")
    page.wait_for_selector("#metrics-chart svg path")
    assert page.locator("#metrics-chart svg path").count() >= 3
    page.click("#start-training")
    page.wait_for_selector("#run-status .badge")
    run = TrainingRun.objects.get()
    assert run.started_by.username == "ada"
    # No GPU worker runs under live_server (StubBroker): the test plays the trainer and
    # writes its progress, which the page polls. tests/e2e/test_worker_loop.py trains for real.
    TrainingRun.objects.filter(pk=run.pk).update(
        status="running",
        stage="unet",
        epoch=3,
        epochs=10,
        step=4,
        steps=8,
        progress=0.27,
        losses=[{"stage": "unet", "epoch": e, "loss": 0.9 - 0.1 * e} for e in range(1, 4)],
    )
    page.wait_for_function(
        "document.getElementById('run-stage') && document.getElementById('run-stage').textContent === 'unet'",
        timeout=15000,
    )
    assert page.locator("#run-pct").inner_text() == "27%"
    assert page.locator("#loss-chart svg path").count() == 1
    assert page.locator("#cancel-training").is_visible()
    shot(page, "models-training")

    # Promote the better candidate; a worse one needs a written reason; roll back.
    v2 = ModelVersion.objects.get(name="v2")
    page.click(f'#versions tr[data-id="{v2.pk}"] button[data-act="promote"]')
    page.wait_for_selector(f'#versions tr[data-id="{v2.pk}"].active-version')
    v3 = ModelVersion.objects.create(
        name="v3",
        parent=v2,
        status=ModelVersion.Status.CANDIDATE,
        preset="lite",
        metrics={
            "dsc": 0.60,
            "small_sensitivity": 0.50,
            "large_sensitivity": 0.9,
            "fp_per_study": 1.5,
        },
    )
    _gate_scored(v3)
    page.reload()
    page.click(f'#versions tr[data-id="{v3.pk}"] button[data-act="promote"]')
    page.wait_for_selector("#override[open]")
    shot(page, "models-override")
    page.fill("#override-reason", "fixes the false positives at the skull base seen in clinic")
    page.click("#override-confirm")
    page.wait_for_selector(f'#versions tr[data-id="{v3.pk}"].active-version')
    v3.refresh_from_db()
    assert v3.status == "active" and "skull base" in v3.promotion_note
    page.once("dialog", lambda dialog: dialog.accept("v3 misses small lesions"))
    page.click(f'#versions tr[data-id="{v2.pk}"] button[data-act="rollback"]')
    page.wait_for_selector(f'#versions tr[data-id="{v2.pk}"].active-version')
    assert ModelVersion.objects.get(pk=v2.pk).status == "active"
    assert not page.js_errors, page.js_errors


def test_second_clinician_sees_who_reviews_and_gets_a_read_only_view(
    cast: Any, browser_login: Any
) -> None:
    ready = ready_study(seed=17, n_lesions=2)
    study = ready.study
    url = f"/studies/{study.pk}/"
    cora = browser_login("cora", "cora-pass-1", next_path=url)
    wait_case_ready(cora)
    cora.wait_for_selector("#c-lease .lease.mine")

    carl = browser_login("carl", "carl-pass-1", next_path="/")
    carl.wait_for_selector(f'#worklist tr[data-id="{study.pk}"] .lease.other')
    assert "cora" in carl.locator(f'#worklist tr[data-id="{study.pk}"]').inner_text()
    carl.goto(f"{carl.base}{url}")
    wait_case_ready(carl)
    carl.wait_for_selector("#banner:not([hidden])")
    assert "Being reviewed by cora" in carl.locator("#banner").inner_text()
    assert carl.locator("#case.readonly").count() == 1
    assert carl.locator("#approve").is_disabled() and carl.locator("#new-lesion").is_disabled()

    # Images: CT on the same grid, then MR with CT blended over it; undo/redo of a stroke.
    cora.click('#channel-seg [data-channel="ct"]')
    cora.wait_for_function("document.getElementById('ov-tr').textContent.startsWith('CT')")
    cora.click("#presets button >> text=Bone")
    shot(cora, "case-ct-bone")
    cora.click('#channel-seg [data-channel="fused"]')
    cora.wait_for_function("document.getElementById('ov-tr').textContent.startsWith('MR + CT')")
    shot(cora, "case-fused")
    cora.click('#channel-seg [data-channel="mr"]')
    label = ready.false_positive_label
    cora.click(f'#lesion-list li[data-label="{label}"]')
    before = cora.evaluate(f"window.LLViewer.editor.counts.get({label})")
    cora.click('[data-tool="eraser"]')
    z = cora.evaluate("window.LLViewer.z")
    from lesionloop.review.models import Lesion

    lesion = Lesion.objects.get(study=study, label=label)
    cy, cx = (lesion.bbox[1] + lesion.bbox[4]) / 2, (lesion.bbox[2] + lesion.bbox[5]) / 2
    paint(cora, z, [(cy, cx - 2), (cy, cx + 2)])
    after = cora.evaluate(f"window.LLViewer.editor.counts.get({label}) || 0")
    assert after < before
    cora.keyboard.press("Control+z")
    assert cora.evaluate(f"window.LLViewer.editor.counts.get({label})") == before
    cora.keyboard.press("Control+Shift+z")
    assert cora.evaluate(f"window.LLViewer.editor.counts.get({label}) || 0") == after
    assert not cora.js_errors, cora.js_errors
    assert not carl.js_errors, carl.js_errors


def _gate_scored(*versions: Any) -> None:
    """Score ``versions`` on the gate set (made on first use) with their own metrics: the
    page compares and plots only numbers from one gate set."""
    from django.utils import timezone

    from lesionloop.registry import services as registry
    from lesionloop.registry.models import GateScore
    from lesionloop.registry.selectors import gate_set_current

    gate = gate_set_current() or registry.gate_set_version_grow(
        new_members=[{"study_id": 1, "snapshot_dir": "x", "stratum": "<100", "n_lesions": 2}]
    )
    for version in versions:
        GateScore.objects.create(
            model_version=version,
            gate_set=gate,
            status="done",
            metrics=version.metrics,
            finished_at=timezone.now(),
        )
