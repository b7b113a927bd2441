"""Review safety in the real browser: the reported path (accept, reject, press B, paint,
save) can no longer turn a rejected lesion into a kept one; rejected lesions look
different; decisions undo and redo; the approved study's exports hold exactly the kept
lesions, and its page offers no approve button or training checkbox."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from tests.e2e.browser_data import ready_study
from tests.e2e.browser_helpers import paint, shot, wait_case_ready

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Alpha and colour of the overlay's pixels of one label on its largest slice.
OVERLAY_PIXELS = """([label, z]) => {
  const S = window.LLViewer; const [, H, W] = S.shape;
  const canvas = S.overlay.sliceCanvas('axial', z);
  if (!canvas) return {count: 0, maxAlpha: 0, red: 0};
  const px = canvas.getContext('2d').getImageData(0, 0, W, H).data;
  let count = 0, maxAlpha = 0, red = 0;
  for (let i = 0; i < H * W; i++) {
    if (S.mask[z * H * W + i] !== label || px[4 * i + 3] === 0) continue;
    count++; if (px[4 * i + 3] > maxAlpha) { maxAlpha = px[4 * i + 3]; red = px[4 * i]; }
  }
  return {count, maxAlpha, red};
}"""


def _badge(page: Any, label: int, decision: str) -> None:
    page.wait_for_selector(f'#lesion-list li[data-label="{label}"] .badge.dec-{decision}')


def test_rejected_lesion_stays_out_of_every_export(
    cast: Any, browser_login: Any, tmp_path: Path
) -> None:
    from lesionloop.review import services
    from lesionloop.review.models import Lesion

    ready = ready_study(seed=5, n_lesions=3)
    study, fp = ready.study, ready.false_positive_label
    lesions = {les.label: les for les in Lesion.objects.filter(study=study)}
    page = browser_login("cora", "cora-pass-1", next_path=f"/studies/{study.pk}/")
    wait_case_ready(page)
    page.wait_for_selector("#c-lease .lease.mine")

    # Accept every real lesion, then reject the false positive: it stays selected.
    for label in sorted(set(lesions) - {fp}):
        page.click(f'#lesion-list li[data-label="{label}"]')
        page.keyboard.press("a")
        _badge(page, label, "accepted")
    page.click(f'#lesion-list li[data-label="{fp}"]')
    page.click("#reject")
    _badge(page, fp, "rejected")
    assert page.evaluate("window.LLViewer.selected") == fp

    # Press B and paint at its edge: the brush stays off and nothing changes.
    page.keyboard.press("b")
    assert page.evaluate("window.LLViewer.tool") == "navigate"
    assert page.locator('[data-tool="brush"]').is_disabled()
    assert page.locator('[data-tool="eraser"]').is_disabled()
    assert page.locator("#delete-lesion").is_disabled()
    assert "accept it first" in page.locator("#tool-hint").inner_text()
    z = lesions[fp].largest_slice
    _z0, y0, x0, _z1, y1, x1 = lesions[fp].bbox
    before = page.evaluate(f"window.LLViewer.editor.counts.get({fp})")
    paint(page, z, [(y0, x0), (y1, x1)])
    assert page.evaluate(f"window.LLViewer.editor.counts.get({fp})") == before
    assert not page.evaluate("window.LLViewer.editor.dirty")

    # Rejected lesions are a faint red outline, or hidden; kept ones stay opaque.
    dimmed = page.evaluate(OVERLAY_PIXELS, [fp, z])
    assert dimmed["count"] > 0 and dimmed["maxAlpha"] == 130 and dimmed["red"] == 200
    kept = next(label for label in lesions if label != fp)
    assert page.evaluate(OVERLAY_PIXELS, [kept, lesions[kept].largest_slice])["maxAlpha"] == 255
    shot(page, "case-rejected-dimmed")
    page.uncheck("#rejected-on")
    assert page.evaluate(OVERLAY_PIXELS, [fp, z])["count"] == 0
    page.check("#rejected-on")

    # Decisions undo and redo, on the server too.
    page.keyboard.press("Control+z")
    _badge(page, fp, "pending")
    assert Lesion.objects.get(pk=lesions[fp].pk).decision == "pending"
    assert not page.locator('[data-tool="brush"]').is_disabled()
    page.keyboard.press("Control+Shift+z")
    _badge(page, fp, "rejected")
    assert Lesion.objects.get(pk=lesions[fp].pk).decision == "rejected"

    # Approve: the approved page offers no approve button and no training checkbox.
    page.wait_for_selector("#approve:not([disabled])")
    page.click("#approve")
    page.wait_for_selector("#approved-note:not([hidden])")
    assert not page.locator("#approve").is_visible()
    assert not page.locator("#eligible").is_visible()
    assert not page.locator("#save").is_visible()
    shot(page, "case-approved-no-approve")
    assert not page.js_errors, page.js_errors

    kept_labels = sorted(set(lesions) - {fp})
    data, _ = services.study_export_nifti(study_id=study.pk, user=cast.clinician)
    (tmp_path / "labels.nii.gz").write_bytes(data)
    exported = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "labels.nii.gz")))
    assert sorted(int(v) for v in np.unique(exported) if v) == kept_labels
    for fmt in ("rtstruct", "seg"):
        data, _ = services.EXPORTERS[fmt](study_id=study.pk, user=cast.clinician)
        ds = pydicom.dcmread(io.BytesIO(data))
        if fmt == "rtstruct":
            names = sorted(str(roi.ROIName) for roi in ds.StructureSetROISequence)
        else:
            names = sorted(str(seg.SegmentLabel) for seg in ds.SegmentSequence)
        assert names == sorted(f"Lesion {label}" for label in kept_labels), fmt
