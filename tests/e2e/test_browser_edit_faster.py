"""Editing faster in the real browser (issue 15, part 5): the 3D brush paints a ball through
several slices and saves; *Interpolate* fills the slices between two drawn slices as one
undo step; *Click to add* on the lesion the model missed proposes it (the server's
``propose-lesion``), Accept paints it as a new lesion that saves with decision ``added``;
a click on a lesion already drawn reads the server's ``no_lesion_found`` message."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.e2e.browser_data import ready_study
from tests.e2e.browser_helpers import shot
from tests.e2e.test_browser_planes import pixel_page, wait_planes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# (voxel count, the z slices) of a label in the page's mask.
LABEL_VOXELS = """(label) => { const S = window.LLViewer; const [, H, W] = S.shape; const zs = new Set(); let n = 0;
    S.mask.forEach((v, i) => { if (v === label) { n++; zs.add(Math.floor(i / (H * W))); } });
    return [n, [...zs].sort((a, b) => a - b)]; }"""


def open_for_edit(page: Any) -> None:
    wait_planes(page)
    page.wait_for_selector("#c-lease .lease.mine")


def set_range(page: Any, selector: str, value: float) -> None:
    page.evaluate(
        """([sel, v]) => { const el = document.querySelector(sel); el.value = String(v);
            el.dispatchEvent(new Event('input', {bubbles: true})); el.dispatchEvent(new Event('change', {bubbles: true})); }""",
        [selector, value],
    )


def stroke(page: Any, plane: str, points: list[tuple[float, float]]) -> None:
    page.mouse.move(*pixel_page(page, plane, *points[0]))
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*pixel_page(page, plane, *p), steps=3)
    page.mouse.up()


def save_and_wait(page: Any) -> None:
    page.keyboard.press("Control+s")
    page.wait_for_selector("#dirty:has-text('all saved')", timeout=20000)


def test_3d_brush_paints_neighbouring_slices_and_saves(cast: Any, browser_login: Any) -> None:
    from lesionloop.review.models import Lesion

    study = ready_study(seed=11, n_lesions=2).study
    page = browser_login("cora", "cora-pass-1", next_path=f"/studies/{study.pk}/")
    open_for_edit(page)
    d, h, w = study.grid["shape_dhw"]
    dz, dy, dx = study.grid["spacing_mm"]
    radius = 4.0
    set_range(page, "#radius", radius)
    page.check("#brush-3d")
    page.click("#new-lesion")
    label = page.evaluate("window.LLViewer.selected")
    z = page.evaluate("window.LLViewer.z")
    undo_before = page.evaluate("window.LLViewer.editor.undoStack.length")
    stroke(page, "axial", [(h // 4, w // 4), (h // 4, w // 4 + 3), (h // 4 + 2, w // 4 + 5)])
    n, zs = page.evaluate(LABEL_VOXELS, label)
    # The ball reaches slice z + m while the slab's near face (m * dz - dz / 2) is within the radius.
    reach = max(m for m in range(0, d) if m == 0 or m * dz - dz / 2 < radius)
    expected = [k for k in range(z - reach, z + reach + 1) if 0 <= k < d]
    assert len(expected) > 1, "the study's slices are too thick for this radius"
    assert zs == expected, (zs, expected, study.grid["spacing_mm"])
    assert page.evaluate("window.LLViewer.editor.undoStack.length") == undo_before + 1
    shot(page, "brush-3d")
    save_and_wait(page)
    lesion = Lesion.objects.get(study=study, label=label)
    assert lesion.volume_mm3 == pytest.approx(n * dz * dy * dx, rel=1e-6)
    assert lesion.decision == "added"
    assert not page.js_errors, page.js_errors


def test_interpolate_fills_the_gap_slices_in_one_undo_step(cast: Any, browser_login: Any) -> None:
    from lesionloop.review.models import Lesion

    study = ready_study(seed=11, n_lesions=2).study
    page = browser_login("cora", "cora-pass-1", next_path=f"/studies/{study.pk}/")
    open_for_edit(page)
    d, h, w = study.grid["shape_dhw"]
    dz, dy, dx = study.grid["spacing_mm"]
    set_range(page, "#radius", 2.0)
    page.click("#new-lesion")
    label = page.evaluate("window.LLViewer.selected")
    z0 = max(0, min(d - 5, page.evaluate("window.LLViewer.z") - 2))
    z1 = z0 + 4
    row, col = h // 4, w // 4
    for z, reach in ((z0, 1), (z1, 4)):  # a small and a larger patch
        page.evaluate(f"window.LLViewer.app.views.setSlice('axial', {z})")
        page.wait_for_function(f"document.getElementById('viewport').dataset.slice === '{z}'")
        stroke(page, "axial", [(row, col - reach), (row, col + reach)])
    drawn, zs = page.evaluate(LABEL_VOXELS, label)
    assert zs == [z0, z1]
    undo_before = page.evaluate("window.LLViewer.editor.undoStack.length")
    page.click("#interpolate")
    n, zs = page.evaluate(LABEL_VOXELS, label)
    assert zs == list(range(z0, z1 + 1)), zs
    per_slice = page.evaluate(
        """([label, zs]) => { const S = window.LLViewer; const [, H, W] = S.shape;
            return zs.map((z) => { let c = 0; for (let i = z * H * W; i < (z + 1) * H * W; i++) if (S.mask[i] === label) c++; return c; }); }""",
        [label, list(range(z0, z1 + 1))],
    )
    # Growing from the small patch to the larger one, never bigger than the larger.
    assert per_slice[0] <= per_slice[1] <= per_slice[2] <= per_slice[3] <= per_slice[4], per_slice
    assert page.evaluate("window.LLViewer.editor.undoStack.length") == undo_before + 1
    shot(page, "interpolated")
    page.keyboard.press("Control+z")
    page.wait_for_function(f"window.LLViewer.editor.undoStack.length === {undo_before}")
    assert page.evaluate(LABEL_VOXELS, label) == [drawn, [z0, z1]]
    page.keyboard.press("Control+Shift+z")
    page.wait_for_function(f"window.LLViewer.editor.undoStack.length === {undo_before + 1}")
    save_and_wait(page)
    lesion = Lesion.objects.get(study=study, label=label)
    assert lesion.volume_mm3 == pytest.approx(n * dz * dy * dx, rel=1e-6)
    assert not page.js_errors, page.js_errors


def test_click_to_add_proposes_the_missed_lesion_and_saves_it(
    cast: Any, browser_login: Any
) -> None:
    from lesionloop.review.models import Lesion

    ready = ready_study(seed=7, n_lesions=3)
    study, missed = ready.study, ready.missed
    assert missed, "the fixture misses its smallest lesion"
    page = browser_login("cora", "cora-pass-1", next_path=f"/studies/{study.pk}/")
    open_for_edit(page)
    assert page.is_hidden("#proposal")  # nothing proposed yet
    page.keyboard.press("g")
    assert page.evaluate("window.LLViewer.tool") == "add"

    # A click on a lesion already drawn: the server's reason, in words.
    drawn = Lesion.objects.filter(study=study).order_by("label").first()
    z, y, x = page.evaluate(
        """(label) => { const S = window.LLViewer; const [, H, W] = S.shape; const i = S.mask.indexOf(label);
            return [Math.floor(i / (H * W)), Math.floor(i / W) % H, i % W]; }""",
        drawn.label,
    )
    page.evaluate(f"window.LLViewer.app.views.setSlice('axial', {z})")
    page.wait_for_function(f"document.getElementById('viewport').dataset.slice === '{z}'")
    page.mouse.click(*pixel_page(page, "axial", y, x))
    page.wait_for_selector('#proposal[data-state="error"]', timeout=10000)
    assert page.get_attribute("#proposal", "data-code") == "no_lesion_found"
    assert f"already belongs to lesion {drawn.label}" in page.inner_text("#proposal-text")

    # A click on the missed lesion: a proposal, outlined, then accepted as a new lesion.
    mz, my, mx = missed["z"], round(missed["y"]), round(missed["x"])
    page.evaluate(f"window.LLViewer.app.views.setSlice('axial', {mz})")
    page.wait_for_function(f"document.getElementById('viewport').dataset.slice === '{mz}'")
    times = []
    for _ in range(3):  # the first answer, then two more from the same click
        page.mouse.click(*pixel_page(page, "axial", my, mx))
        page.wait_for_selector('#proposal[data-state="shown"]', timeout=10000)
        times.append(page.evaluate("window.LLViewer.proposeMs"))
        if len(times) < 3:
            page.click("#proposal-discard")
    print(f"\npropose-lesion round trip in the browser (ms): {[round(t) for t in times]}")
    proposal = page.evaluate(
        "({vox: window.LLViewer.proposal.volume_vox, bbox: window.LLViewer.proposal.bbox, n: window.LLViewer.proposal.indices.length})"
    )
    assert proposal["n"] == proposal["vox"] > 0
    assert missed["voxels"] / 3 <= proposal["vox"] <= missed["voxels"] * 3, (proposal, missed)
    # Every plane goes through the click, so every plane shows a section of the proposal.
    assert page.evaluate("window.LLViewer.pos") == [mz, my, mx]
    shot(page, "click-to-add-proposal")
    undo_before = page.evaluate("window.LLViewer.editor.undoStack.length")
    page.click("#proposal-accept")
    label = page.evaluate("window.LLViewer.selected")
    assert label == max(lesion.label for lesion in Lesion.objects.filter(study=study)) + 1
    n, _ = page.evaluate(LABEL_VOXELS, label)
    assert n == proposal["vox"]
    assert page.evaluate("window.LLViewer.editor.undoStack.length") == undo_before + 1
    assert page.is_hidden("#proposal")
    save_and_wait(page)
    lesion = Lesion.objects.get(study=study, label=label)
    dz, dy, dx = study.grid["spacing_mm"]
    assert lesion.decision == "added"
    assert lesion.volume_mm3 == pytest.approx(n * dz * dy * dx, rel=1e-6)
    page.wait_for_selector(f'#lesion-list li[data-label="{label}"] .dec:has-text("added")')
    assert all(math.isfinite(t) and t > 0 for t in times)
    # The browser logs the refused click's 422 itself; nothing else may have failed.
    expected = "the server responded with a status of 422"
    assert [e for e in page.js_errors if expected not in e] == [], page.js_errors
    assert len(page.js_errors) <= 1
