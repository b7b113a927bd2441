"""A clinician reviews a study in the real browser, end to end: worklist -> case ->
lesion panel ordered by size -> jump -> reject -> paint a missed lesion -> save ->
approve -> the auditor sees it in the study's timeline."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.browser_data import ready_study
from tests.e2e.browser_helpers import lesion_rows, paint, shot, wait_case_ready

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_clinician_reviews_paints_saves_approves_and_auditor_sees_it(
    cast: Any, browser_login: Any
) -> None:
    from lesionloop.review.models import Lesion

    low = ready_study(seed=5, n_lesions=2, priority=0.2, description="follow-up")
    top = ready_study(seed=7, n_lesions=3, priority=0.9, description="MR T1+C / planning CT")
    study = top.study

    page = browser_login("cora", "cora-pass-1")
    page.wait_for_selector("#worklist tbody tr[data-id]")
    rows = page.locator("#worklist tbody tr[data-id]")
    assert rows.count() == 2
    # Highest review priority first, highlighted, and the "Review next" button goes there.
    assert rows.first.get_attribute("data-id") == str(study.pk)
    assert "next" in (rows.first.get_attribute("class") or "")
    assert page.locator("#review-next").get_attribute("href") == f"/studies/{study.pk}/"
    assert page.locator(f'#worklist tr[data-id="{low.study.pk}"]').count() == 1
    shot(page, "worklist")

    page.click("#review-next")
    page.wait_for_url(f"**/studies/{study.pk}/")
    wait_case_ready(page)
    page.wait_for_selector("#c-lease .lease.mine")
    assert page.locator("#c-model").inner_text() == top.model_version.name

    # The lesion panel is ordered by size, smallest first; reversible.
    lesions = lesion_rows(page)
    assert len(lesions) == Lesion.objects.filter(study=study).count() == 3
    vols = [row["vol"] for row in lesions]
    assert vols == sorted(vols)
    page.click("#sort-dir")
    assert [row["vol"] for row in lesion_rows(page)] == sorted(vols, reverse=True)
    page.click("#sort-dir")

    # Selecting a lesion jumps to its largest slice.
    biggest = Lesion.objects.filter(study=study).order_by("-volume_mm3").first()
    page.click(f'#lesion-list li[data-label="{biggest.label}"]')
    page.wait_for_function(f"window.LLViewer.z === {biggest.largest_slice}")
    assert page.locator("#slice").input_value() == str(biggest.largest_slice)
    assert f"{biggest.largest_slice + 1} / " in page.locator("#slice-label").inner_text()
    shot(page, "case-viewer")

    # Reject the false positive, accept the rest with the keyboard.
    page.click(f'#lesion-list li[data-label="{top.false_positive_label}"]')
    page.click("#reject")
    page.wait_for_selector(
        f'#lesion-list li[data-label="{top.false_positive_label}"] .badge.dec-rejected'
    )
    for lesion in Lesion.objects.filter(study=study, decision="pending"):
        page.click(f'#lesion-list li[data-label="{lesion.label}"]')
        page.keyboard.press("a")
        page.wait_for_selector(f'#lesion-list li[data-label="{lesion.label}"] .badge.dec-accepted')
    assert Lesion.objects.get(study=study, label=top.false_positive_label).decision == "rejected"

    # Paint the lesion the model missed as a new lesion.
    assert top.missed, "the synthetic study should have a missed lesion"
    page.click("#new-lesion")
    new_label = page.evaluate("window.LLViewer.selected")
    page.locator("#radius").fill("4.5")
    z, y, x = top.missed["z"], top.missed["y"], top.missed["x"]
    paint(page, z, [(y, x - 1), (y, x), (y, x + 1)])
    row = next(r for r in lesion_rows(page) if r["label"] == new_label)
    assert row["vol"] and row["vol"] > 0
    assert page.locator("#dirty").inner_text() == "unsaved edits"
    shot(page, "case-viewer-painted")

    page.click("#save")
    page.wait_for_function("document.getElementById('dirty').textContent === 'all saved'")
    added = Lesion.objects.get(study=study, label=new_label)
    assert added.decision == "added"
    assert added.volume_mm3 == pytest.approx(row["vol"])

    # Everything decided: approve, training-eligible.
    page.wait_for_selector("#approve:not([disabled])")
    page.check("#eligible")
    page.click("#approve")
    page.wait_for_selector("#approved-note:not([hidden])")
    study.refresh_from_db()
    assert study.status == "approved" and study.training_eligible
    assert study.approved_by.username == "cora"
    shot(page, "case-viewer-approved")
    # The approved contour can be taken to the planning system from here.
    page.wait_for_selector("#export-box:not([hidden])")
    for fmt in ("rtstruct", "seg", "nifti"):
        href = page.get_attribute(f"#export-{fmt}", "href")
        assert href == f"/api/studies/{study.pk}/export/{fmt}"
    status = page.evaluate(
        "async (u) => (await fetch(u)).status", f"/api/studies/{study.pk}/export/nifti"
    )
    assert status == 200
    assert not page.js_errors, page.js_errors

    # The auditor sees the whole story in the study's timeline.
    auditor = browser_login("otto", "otto-pass-1", next_path=f"/audit/studies/{study.pk}/")
    auditor.wait_for_selector('#s-timeline li[data-type="study_approved"]')
    text = auditor.locator("#s-timeline").inner_text()
    assert "Approved" in text and "cora" in text
    assert f"Lesion {top.false_positive_label}: pending → rejected" in text
    assert "Saved mask revision" in text
    assert (
        auditor.locator(f'#s-summary a[href="/audit/models/{top.model_version.id}/"]').count() == 1
    )
    shot(auditor, "audit-study")
    auditor.click(f'#s-summary a[href="/audit/models/{top.model_version.id}/"]')
    auditor.wait_for_selector("#m-pre a, #m-lineage .node")
    shot(auditor, "audit-model")
    auditor.goto(f"{auditor.base}/audit/")
    auditor.wait_for_selector("#a-events tbody tr[data-type]")
    shot(auditor, "audit-index")
    assert not auditor.js_errors, auditor.js_errors
