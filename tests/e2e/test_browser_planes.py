"""Three linked planes in the real browser: the one-plane / three-plane layout switch, a
click in one plane moving the others, the physical aspect of anisotropic voxels (2 mm
slices on a 1 mm grid), a selected lesion centred in all three planes, and the brush in
the coronal plane."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser_data import large_study, ready_study
from tests.e2e.browser_helpers import shot, wait_case_ready

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PLANES = {"axial": "viewport", "coronal": "viewport-coronal", "sagittal": "viewport-sagittal"}
SCREENS = Path(os.environ.get("LL_SCREENS", "/work/helpers/screens"))

# Canvas geometry of one plane: where image pixel corners and centres land on the canvas.
GEOMETRY = """([id, points]) => {
  const el = document.getElementById(id);
  const canvas = el.querySelector('canvas');
  const img = cornerstone.getImage(el);
  return {
    rows: img.rows, cols: img.columns, width: canvas.width, height: canvas.height,
    points: points.map(([row, col]) => { const c = cornerstone.pixelToCanvas(el, {x: col, y: row}); return [c.y, c.x]; }),
  };
}"""


def wait_planes(page: Any) -> None:
    wait_case_ready(page)
    page.wait_for_selector('#viewports[data-all-planes="1"]', timeout=20000)


def slices(page: Any) -> dict[str, int]:
    return {p: int(page.get_attribute(f"#{el}", "data-slice")) for p, el in PLANES.items()}


def click_pixel(page: Any, plane: str, row: float, col: float) -> None:
    page.mouse.click(*pixel_page(page, plane, row, col))


def test_layout_switch_and_click_linking(cast: Any, browser_login: Any) -> None:
    ready = ready_study(seed=7, n_lesions=3)
    study = ready.study
    page = browser_login("cora", "cora-pass-1", next_path=f"/studies/{study.pk}/")
    wait_planes(page)
    d, h, w = study.grid["shape_dhw"]
    assert page.get_attribute("#viewports", "data-layout") == "3"
    for el in PLANES.values():
        assert page.locator(f"#{el}").is_visible()
    axial_wide = page.locator("#viewport").bounding_box()["width"]

    # One plane: coronal and sagittal go, the axial view takes their room; L brings them back.
    page.click('#layout-seg button[data-layout="1"]')
    page.wait_for_selector('#viewports[data-layout="1"]')
    assert not page.locator("#viewport-coronal").is_visible()
    assert not page.locator("#viewport-sagittal").is_visible()
    page.wait_for_function(
        f"document.querySelector('#viewport canvas').getBoundingClientRect().width > {axial_wide + 50}"
    )
    page.keyboard.press("l")
    page.wait_for_selector('#viewports[data-layout="3"]')
    assert page.locator("#viewport-sagittal").is_visible()

    # A click in the axial plane moves the coronal and sagittal slices through that voxel.
    before = slices(page)
    row, col = h // 3, (2 * w) // 3
    assert (row, col) != (before["coronal"], before["sagittal"])
    click_pixel(page, "axial", row, col)
    page.wait_for_function(f"window.LLViewer.pos[1] === {row} && window.LLViewer.pos[2] === {col}")
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "three-planes-ingested.png"))
    page.wait_for_function(
        f"document.getElementById('viewport-coronal').dataset.slice === '{row}' && "
        f"document.getElementById('viewport-sagittal').dataset.slice === '{col}'"
    )
    assert slices(page)["axial"] == before["axial"]

    # A click in the coronal plane moves the axial slice (superior at the top: row 0 = z D-1).
    click_pixel(page, "coronal", 2, w // 2)
    page.wait_for_function(f"window.LLViewer.z === {d - 1 - 2}")
    assert page.locator("#slice").input_value() == str(d - 3)
    # the sagittal view repaints on its own frame: wait for it rather than race it
    page.wait_for_function(
        f"document.getElementById('viewport-sagittal').dataset.slice === '{w // 2}'"
    )
    # The wheel scrolls the plane under the mouse only.
    box = page.locator("#viewport-sagittal").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 100)
    page.wait_for_function(
        f"document.getElementById('viewport-sagittal').dataset.slice === '{w // 2 + 1}'"
    )
    assert slices(page)["axial"] == d - 3
    assert not page.js_errors, page.js_errors


def test_anisotropic_aspect_and_lesion_centred_in_all_planes(cast: Any, browser_login: Any) -> None:
    from lesionloop.review.models import Lesion

    study = large_study(shape=(40, 128, 128), spacing=(2.0, 1.0, 1.0), n_lesions=4, seed=3)
    page = browser_login("cora", "cora-pass-1", next_path=f"/studies/{study.pk}/")
    wait_planes(page)

    # 2 mm slices on a 1 mm grid: the coronal and sagittal images are 128 mm wide and
    # 80 mm tall on screen, not 128 x 40 as their pixel counts would have it.
    for plane, expected in (("axial", 1.0), ("coronal", 128 / 80), ("sagittal", 128 / 80)):
        g = page.evaluate(GEOMETRY, [PLANES[plane], [[0, 0], [0, 0]]])
        g = page.evaluate(GEOMETRY, [PLANES[plane], [[0, 0], [g["rows"], g["cols"]]]])
        (y0, x0), (y1, x1) = g["points"]
        aspect = (x1 - x0) / (y1 - y0)
        assert aspect == pytest.approx(expected, rel=0.01), (plane, aspect)

    # Selecting a lesion: every plane goes through it and has it at the centre.
    lesion = Lesion.objects.filter(study=study).order_by("-volume_mm3").first()
    page.click(f'#lesion-list li[data-label="{lesion.label}"]')
    page.wait_for_function(f"window.LLViewer.z === {lesion.largest_slice}")
    pos = page.evaluate("window.LLViewer.pos")
    assert (
        page.evaluate(
            "([z, y, x]) => { const S = window.LLViewer; const [, H, W] = S.shape; return S.mask[z * H * W + y * W + x]; }",
            pos,
        )
        == lesion.label
    )
    assert slices(page) == {"axial": pos[0], "coronal": pos[1], "sagittal": pos[2]}
    centre = page.evaluate("window.LLViewer.selMark.centre")
    d = study.grid["shape_dhw"][0]
    in_plane = {
        "axial": (centre[1], centre[2]),
        "coronal": (d - 1 - centre[0], centre[2]),
        "sagittal": (d - 1 - centre[0], centre[1]),
    }
    for plane, (row, col) in in_plane.items():
        g = page.evaluate(GEOMETRY, [PLANES[plane], [[row + 0.5, col + 0.5]]])
        cy, cx = g["points"][0]
        assert cx == pytest.approx(g["width"] / 2, abs=1.5), plane
        assert cy == pytest.approx(g["height"] / 2, abs=1.5), plane
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "three-planes.png"))
    shot(page, "three-planes")
    assert not page.js_errors, page.js_errors


def test_brush_paints_in_the_coronal_plane_and_saves(cast: Any, browser_login: Any) -> None:
    from lesionloop.review.models import Lesion

    ready = ready_study(seed=11, n_lesions=2)
    study = ready.study
    page = browser_login("cora", "cora-pass-1", next_path=f"/studies/{study.pk}/")
    wait_planes(page)
    page.wait_for_selector("#c-lease .lease.mine")
    d, h, w = study.grid["shape_dhw"]
    page.click("#new-lesion")
    label = page.evaluate("window.LLViewer.selected")
    assert page.evaluate("window.LLViewer.tool") == "brush"
    k = int(page.get_attribute("#viewport-coronal", "data-slice"))
    row = d // 2
    points = [(row, w // 2 - 2), (row, w // 2), (row, w // 2 + 2)]
    page.mouse.move(*pixel_page(page, "coronal", *points[0]))
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*pixel_page(page, "coronal", *p), steps=3)
    page.mouse.up()
    painted = page.evaluate(
        """(label) => { const S = window.LLViewer; const [, H, W] = S.shape; const ys = new Set(); let n = 0;
            S.mask.forEach((v, i) => { if (v === label) { n++; ys.add(Math.floor(i / W) % H); } });
            return [n, [...ys]]; }""",
        label,
    )
    assert painted[0] > 0 and painted[1] == [k], painted
    page.keyboard.press("Control+s")
    page.wait_for_selector("#dirty:has-text('all saved')")
    lesion = Lesion.objects.get(study=study, label=label)
    dz, dy, dx = study.grid["spacing_mm"]
    assert lesion.volume_mm3 == pytest.approx(painted[0] * dz * dy * dx, rel=1e-6)
    assert not page.js_errors, page.js_errors


def pixel_page(page: Any, plane: str, row: float, col: float) -> tuple[float, float]:
    return page.evaluate(
        """([id, row, col]) => {
            const el = document.getElementById(id);
            const canvas = el.querySelector('canvas');
            const c = cornerstone.pixelToCanvas(el, {x: col + 0.5, y: row + 0.5});
            const r = canvas.getBoundingClientRect();
            const ratio = canvas.width / r.width;
            return [r.left + c.x / ratio, r.top + c.y / ratio];
        }""",
        [PLANES[plane], row, col],
    )
