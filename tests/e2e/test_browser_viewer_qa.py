"""Defects a QA tester found in the case viewer (issue 15 follow-up), each checked in the
real browser: typing in a number box is not taken for viewer shortcuts; a deleted lesion
reads as saved after Save; a new empty lesion is not shown as erased; click-to-add looks at
what is on screen; click-to-add in the MIP goes to the slice the MIP shows."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.browser_data import ready_study
from tests.e2e.browser_helpers import shot
from tests.e2e.test_browser_edit_faster import open_for_edit, save_and_wait, set_range
from tests.e2e.test_browser_planes import pixel_page, slices

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

VIEW_STATE = """() => { const S = window.LLViewer; const vp = cornerstone.getViewport(document.getElementById('viewport'));
    return {pos: S.pos, scale: vp.scale, tx: vp.translation.x, ty: vp.translation.y, tool: S.tool}; }"""


def test_typing_in_the_click_to_add_radius_is_not_a_shortcut(cast: Any, browser_login: Any) -> None:
    study = ready_study(seed=7, n_lesions=3).study
    page = browser_login("cora", "cora-pass-1", next_path=f"/studies/{study.pk}/")
    open_for_edit(page)
    page.keyboard.press("g")  # the click-to-add tool, whose radius box this is
    page.keyboard.press("+")  # zoom in, so that a Reset (0) would show
    page.wait_for_function("cornerstone.getViewport(document.getElementById('viewport')).scale > 0")
    before_slices, before = slices(page), page.evaluate(VIEW_STATE)
    box = page.locator("#propose-radius")
    box.fill("")
    box.focus()
    page.keyboard.type("20")  # "0" alone is Reset
    page.keyboard.press("ArrowUp")  # a number box's own step, not the next slice
    page.keyboard.press("ArrowDown")
    for key in ("t", "d", "n", "l"):  # MIP, ruler, next lesion, layout: not from the box
        page.keyboard.press(key)
    assert box.input_value() == "20"
    assert page.evaluate(
        "[window.LLViewer.mipMm, !!window.LLViewer.measure.ruler, window.LLViewer.layout]"
    ) == [0, False, "3"]
    assert page.evaluate("window.LLViewer.proposeRadiusMm") == 20
    assert slices(page) == before_slices
    assert page.evaluate(VIEW_STATE) == before
    assert not page.js_errors, page.js_errors


def test_deleted_lesion_reads_saved_after_save_and_reload(cast: Any, browser_login: Any) -> None:
    from lesionloop.review.models import Lesion

    study = ready_study(seed=7, n_lesions=3).study
    label = Lesion.objects.filter(study=study).order_by("label").first().label
    page = browser_login("cora", "cora-pass-1", next_path=f"/studies/{study.pk}/")
    open_for_edit(page)
    row = f'#lesion-list li[data-label="{label}"]'
    page.click(row)
    page.click("#delete-lesion")
    page.wait_for_selector(f'{row}[data-state="erased"] .badge.unsaved')
    save_and_wait(page)
    lesion = Lesion.objects.get(study=study, label=label)
    assert (lesion.volume_mm3, lesion.longest_diameter_mm, lesion.decision) == (
        0.0,
        None,
        "rejected",
    )
    for _ in range(2):  # after the save, and after a reload
        page.wait_for_selector(f'{row}[data-state="erased"] .dec:has-text("rejected")')
        assert page.locator(f"{row} .badge.unsaved").count() == 0
        assert page.inner_text(f"{row} .vol") == "erased"
        page.reload()
        open_for_edit(page)
    assert not page.js_errors, page.js_errors


def test_new_empty_lesion_reads_new_not_erased(cast: Any, browser_login: Any) -> None:
    study = ready_study(seed=7, n_lesions=3).study
    page = browser_login("cora", "cora-pass-1", next_path=f"/studies/{study.pk}/")
    open_for_edit(page)
    page.keyboard.press("Shift+N")
    label = page.evaluate("window.LLViewer.selected")
    row = f'#lesion-list li[data-label="{label}"]'
    page.wait_for_selector(f'{row}[data-state="empty"]')
    assert page.inner_text(f"{row} .vol") == "new · paint it"
    assert "gone" not in (page.get_attribute(row, "class") or "")
    decoration = page.evaluate(
        f"getComputedStyle(document.querySelector('{row} .lname')).textDecorationLine"
    )
    assert decoration == "none"
    assert not page.js_errors, page.js_errors


def test_click_to_add_where_a_lesion_was_deleted_unsaved(cast: Any, browser_login: Any) -> None:
    from lesionloop.review.models import Lesion

    study = ready_study(seed=7, n_lesions=3).study
    lesion = Lesion.objects.filter(study=study).order_by("-volume_mm3").first()
    page = browser_login("cora", "cora-pass-1", next_path=f"/studies/{study.pk}/")
    open_for_edit(page)
    page.click(f'#lesion-list li[data-label="{lesion.label}"]')
    z, y, x = page.evaluate(
        """(label) => { const S = window.LLViewer; const [, H, W] = S.shape; const i = S.mask.indexOf(label);
            return [Math.floor(i / (H * W)), Math.floor(i / W) % H, i % W]; }""",
        lesion.label,
    )
    page.click("#delete-lesion")  # erased on screen, not saved
    page.keyboard.press("g")
    page.evaluate(f"window.LLViewer.app.views.setSlice('axial', {z})")
    page.wait_for_function(f"document.getElementById('viewport').dataset.slice === '{z}'")
    requests: list[Any] = []
    page.on("request", lambda r: requests.append(r) if "propose-lesion" in r.url else None)
    page.mouse.click(*pixel_page(page, "axial", y, x))
    page.wait_for_selector('#proposal[data-state="shown"]', timeout=10000)
    assert requests and requests[-1].post_data_json["ignore_labels"] == [lesion.label]
    assert page.evaluate("window.LLViewer.proposal.volume_vox") > 0
    page.click("#proposal-accept")
    label = page.evaluate("window.LLViewer.selected")
    assert label != lesion.label
    save_and_wait(page)
    assert Lesion.objects.get(study=study, label=label).decision == "added"
    assert Lesion.objects.get(study=study, label=lesion.label).volume_mm3 == 0.0
    assert not page.js_errors, page.js_errors


def test_click_to_add_in_the_mip_goes_to_the_brightest_slice(cast: Any, browser_login: Any) -> None:
    from lesionloop.review.models import Lesion

    ready = ready_study(seed=7, n_lesions=3)
    study, missed = ready.study, ready.missed
    assert missed, "the fixture misses its smallest lesion"
    d = study.grid["shape_dhw"][0]
    dz = study.grid["spacing_mm"][0]
    page = browser_login("cora", "cora-pass-1", next_path=f"/studies/{study.pk}/")
    open_for_edit(page)
    mz, my, mx = missed["z"], round(missed["y"]), round(missed["x"])
    # The slab's centre 8 mm (at least one slice) off the missed lesion, within the 20 mm slab.
    off = max(1, min(int(8 // dz), int(10 // dz)))
    centre = mz + off if mz + off < d else mz - off
    page.evaluate(f"window.LLViewer.app.views.setSlice('axial', {centre})")
    page.wait_for_function(f"document.getElementById('viewport').dataset.slice === '{centre}'")
    page.click("#mip-seg button[data-mip='20']")
    page.wait_for_function(
        "window.LLViewer.mipMm === 20 && document.getElementById('viewports').dataset.mip === '20'"
    )
    page.keyboard.press("g")
    assert page.evaluate("[window.LLViewer.tool, window.LLViewer.mipMm]") == [
        "add",
        20,
    ]  # G keeps the MIP
    depth = page.evaluate(f"window.LLViewer.app.mipDepthAt('axial', {centre}, {my}, {mx})")
    assert depth != centre and abs(depth - mz) <= 2, (depth, centre, mz)
    page.mouse.click(*pixel_page(page, "axial", my, mx))
    page.wait_for_selector('#proposal[data-state="shown"]', timeout=10000)
    assert page.evaluate("window.LLViewer.proposal.click") == [depth, my, mx]
    assert page.evaluate("window.LLViewer.pos") == [depth, my, mx]
    page.wait_for_function(f"document.getElementById('viewport').dataset.slice === '{depth}'")
    vox = page.evaluate("window.LLViewer.proposal.volume_vox")
    assert missed["voxels"] / 3 <= vox <= missed["voxels"] * 3, (vox, missed)
    assert page.evaluate("window.LLViewer.mipMm") == 20
    shot(page, "qa-mip-click-to-add")

    # The slab's overlay: a contoured lesion off the current slice but within the slab is
    # outlined (dashed) in the MIP; on its own slice only, it would look missed.
    page.click("#proposal-discard")
    drawn = (
        Lesion.objects.filter(study=study)
        .exclude(decision="rejected")
        .order_by("-volume_mm3")
        .first()
    )
    z0, z1 = drawn.bbox[0], drawn.bbox[3]  # slices z0 .. z1 - 1
    k = next(
        (z for z in range(d) if not z0 <= z < z1 and min(abs(z - z0), abs(z - z1 + 1)) * dz <= 8),
        None,
    )
    assert k is not None
    page.evaluate(f"window.LLViewer.app.views.setSlice('axial', {k})")
    page.wait_for_function(f"document.getElementById('viewport').dataset.slice === '{k}'")
    outlined = page.evaluate(
        f"""() => {{ const S = window.LLViewer; const [lo, hi] = S.app.mipSlab('axial', {k});
            const slab = S.overlay.slabSegments('axial', lo, hi, {k});
            const slice = S.overlay.sliceInfo('axial', {k});
            return [slab.has({drawn.label}), !!(slice && slice.extents.has({drawn.label}))]; }}"""
    )
    assert outlined == [True, False]
    shot(page, "qa-mip-slab-outline")
    page.click("#mip-seg button[data-mip='0']")
    page.wait_for_function("window.LLViewer.mipMm === 0")
    assert page.evaluate("window.LLViewer.app.mipSlab('axial', 0)") is None
    assert not page.js_errors, page.js_errors


# RGB of the axial canvas in a box of +-60 canvas pixels around image pixel (row, col).
CANVAS_BOX = """([row, col]) => { const el = document.getElementById('viewport'); const c = el.querySelector('canvas');
    const p = cornerstone.pixelToCanvas(el, {x: col + 0.5, y: row + 0.5});
    const x0 = Math.max(0, Math.round(p.x) - 60), y0 = Math.max(0, Math.round(p.y) - 60);
    const d = c.getContext('2d').getImageData(x0, y0, 120, 120).data; const out = [];
    for (let i = 0; i < d.length; i += 4) out.push([d[i], d[i + 1], d[i + 2]]);
    return out; }"""


def test_brush_outline_is_white_on_a_dark_halo_over_the_lesion(
    cast: Any, browser_login: Any
) -> None:
    from lesionloop.review.models import Lesion

    study = ready_study(seed=7, n_lesions=3).study
    lesion = Lesion.objects.filter(study=study).order_by("-volume_mm3").first()
    _, h, w = study.grid["shape_dhw"]
    page = browser_login("cora", "cora-pass-1", next_path=f"/studies/{study.pk}/")
    open_for_edit(page)
    page.click(f'#lesion-list li[data-label="{lesion.label}"]')  # centres the planes on it
    set_range(page, "#radius", 6.0)
    page.keyboard.press("b")
    z, y, x = page.evaluate("window.LLViewer.pos")
    assert page.evaluate(f"window.LLViewer.mask[{(z * h + y) * w + x}]") == lesion.label
    before = page.evaluate(CANVAS_BOX, [y, x])
    page.mouse.move(*pixel_page(page, "axial", y, x))  # the outline over the lesion itself
    page.wait_for_function("window.LLViewer.cursor !== null")
    page.wait_for_timeout(300)
    after = page.evaluate(CANVAS_BOX, [y, x])
    shot(page, "qa-brush-outline")
    pairs = [(b, a) for b, a in zip(before, after, strict=True) if a != b]
    assert pairs, "the brush outline drew nothing"
    # White line: near-white now. Dark halo: much darker than the lesion under it was.
    white = sum(1 for _, a in pairs if min(a) >= 200)
    darker = sum(1 for b, a in pairs if sum(b) - sum(a) >= 200)
    assert white >= 20 and darker >= 20, (white, darker, len(pairs))
    assert not page.js_errors, page.js_errors
