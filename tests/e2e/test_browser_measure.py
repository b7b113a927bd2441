"""Measuring and finding small lesions in the real browser: the ruler in mm on an
anisotropic study (2 mm slices on a 1 mm grid), the cursor readout (patient mm, HU on CT),
orientation letters and a scale bar that follows zoom in every plane, the outline display,
rings around small lesions, and the diameter columns that update after an edit is saved."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser_data import large_study, ready_study
from tests.e2e.browser_helpers import paint, pixel_to_page
from tests.e2e.test_browser_planes import pixel_page, wait_planes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENS = Path(os.environ.get("LL_SCREENS", "/work/helpers/screens"))
VIEWS = {"axial": "viewport", "coronal": "viewport-coronal", "sagittal": "viewport-sagittal"}


def drag(page: Any, plane: str, a: tuple[float, float], b: tuple[float, float]) -> None:
    page.mouse.move(*pixel_page(page, plane, *a))
    page.mouse.down()
    page.mouse.move(*pixel_page(page, plane, *b), steps=4)
    page.mouse.up()


RULER_DRAWN = """([id, row, col]) => {
  const el = document.getElementById(id);
  const c = cornerstone.pixelToCanvas(el, {x: col + 0.5, y: row + 0.5});
  const d = el.querySelector('canvas').getContext('2d').getImageData(Math.round(c.x) - 2, Math.round(c.y) - 2, 5, 5).data;
  for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] > 180 && d[i + 2] < 150) return true;
  return false;
}"""


def test_ruler_readout_orientation_and_scale_bar_on_an_anisotropic_study(
    cast: Any, browser_login: Any
) -> None:
    # 2 mm slices on a 1 mm grid; origin (-64, -64, -40) mm, identity (LPS) direction.
    study = large_study(shape=(40, 128, 128), spacing=(2.0, 1.0, 1.0), n_lesions=3, seed=5)
    page = browser_login("cora", "cora-pass-1", next_path=f"/studies/{study.pk}/")
    wait_planes(page)

    # Orientation letters on every plane's edges (radiological convention on an LPS grid).
    expected = {
        "axial": {"left": "R", "right": "L", "top": "A", "bottom": "P"},
        "coronal": {"left": "R", "right": "L", "top": "S", "bottom": "I"},
        "sagittal": {"left": "A", "right": "P", "top": "S", "bottom": "I"},
    }
    for plane, el in VIEWS.items():
        got = page.evaluate(
            f"Object.fromEntries([...document.querySelectorAll('#{el} .orient')].map(o => [o.dataset.side, o.textContent]))"
        )
        assert got == expected[plane], plane

    # A scale bar in each plane, one that follows zoom (4x zoom: 4x the pixels per mm).
    for el in VIEWS.values():
        page.wait_for_selector(f"#{el}[data-scale-bar-mm]")
    before = page.evaluate(
        "(() => { const d = document.getElementById('viewport').dataset; return Number(d.scaleBarPx) / Number(d.scaleBarMm); })()"
    )
    mm_before = int(page.get_attribute("#viewport", "data-scale-bar-mm"))
    page.evaluate("window.LLViewer.app.zoomBy(4)")
    page.wait_for_function(
        f"Number(document.getElementById('viewport').dataset.scaleBarMm) < {mm_before}"
    )
    after = page.evaluate(
        "(() => { const d = document.getElementById('viewport').dataset; return Number(d.scaleBarPx) / Number(d.scaleBarMm); })()"
    )
    assert after == pytest.approx(4 * before, rel=0.02)
    page.evaluate("window.LLViewer.app.resetView()")

    # The ruler (D): a coronal row is a 2 mm slice, an axial column 1 mm.
    page.keyboard.press("d")
    assert page.evaluate("window.LLViewer.measure.ruler") is True
    cases = [
        ("coronal", (10, 40), (20, 40), 20.0),  # 10 slices of 2 mm
        ("axial", (30, 20), (30, 50), 30.0),  # 30 columns of 1 mm
        ("sagittal", (5, 30), (11, 38), math.hypot(12.0, 8.0)),  # 6 slices, 8 columns of 1 mm
    ]
    for plane, a, b, mm in cases:
        drag(page, plane, a, b)
        got = page.evaluate(f"window.LLViewer.measure.lines.{plane}.mm")
        assert got == pytest.approx(mm, abs=0.25), plane
        assert float(page.get_attribute(f"#{VIEWS[plane]}", "data-ruler-mm")) == pytest.approx(
            got, abs=0.01
        )
        # The line is on the screen: ruler-yellow pixels around its midpoint.
        mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
        assert page.evaluate(RULER_DRAWN, [VIEWS[plane], *mid]), plane
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "measure-rulers-mr.png"))

    # The cursor readout on CT: HU under the mouse, position in patient mm (LPS).
    page.keyboard.press("c")
    page.wait_for_function(
        "window.LLViewer.channel === 'ct' && document.getElementById('load-state').textContent === ''"
    )
    z = int(page.evaluate("window.LLViewer.z"))
    for (row, col), hu in (((64, 64), 35), ((2, 2), -1000)):
        page.mouse.move(*pixel_to_page(page, row, col))
        page.wait_for_function(
            f"document.querySelector('#viewport .corner.readout').dataset.value === '{hu}'"
        )
        text = page.locator("#viewport .corner.readout").inner_text()
        assert f"CT {hu} HU" in text
        x_mm, y_mm, z_mm = -64 + col * 1.0, -64 + row * 1.0, -40 + z * 2.0
        assert f"{x_mm:.1f}, {y_mm:.1f}, {z_mm:.1f} (LPS mm)" in text, text
    page.screenshot(path=str(SCREENS / "measure-ruler-readout.png"))

    # Esc clears the rulers.
    page.keyboard.press("Escape")
    assert page.evaluate("Object.keys(window.LLViewer.measure.lines).length") == 0
    assert not page.js_errors, page.js_errors


CENTRE_PIXEL = """([id, row, col]) => {
  const el = document.getElementById(id);
  const canvas = el.querySelector('canvas');
  const c = cornerstone.pixelToCanvas(el, {x: col + 0.5, y: row + 0.5});
  const d = canvas.getContext('2d').getImageData(Math.round(c.x), Math.round(c.y), 1, 1).data;
  return [d[0], d[1], d[2]];
}"""


def test_outline_small_rings_and_diameters_update_after_an_edit(
    cast: Any, browser_login: Any
) -> None:
    from lesionloop.review.models import Lesion

    ready = ready_study(seed=11, n_lesions=3)
    study = ready.study
    page = browser_login("cora", "cora-pass-1", next_path=f"/studies/{study.pk}/")
    wait_planes(page)
    page.wait_for_selector("#c-lease .lease.mine")

    # Columns: volume in mm³, the two diameters in mm (the server's), p and Δ explained.
    head = page.evaluate(
        "[...document.querySelectorAll('#lesion-cols span')].map(s => [s.className, s.textContent, s.title])"
    )
    titles = {cls.split()[0]: (text, title) for cls, text, title in head}
    assert "mm³" in titles["vol"][0] and "mm" in titles["dax"][0] and "mm" in titles["d3d"][0]
    assert "probability" in titles["metrics"][1] and "disagree" in titles["metrics"][1]
    assert "axial" in titles["dax"][1].lower() and "3D" in titles["d3d"][1]
    assert "probability" in page.get_attribute("#lesion-list li .p", "title")
    assert "DeepMedic" in page.get_attribute("#lesion-list li .dis", "title")
    for lesion in Lesion.objects.filter(study=study):
        li = f'#lesion-list li[data-label="{lesion.label}"]'
        assert float(page.get_attribute(f"{li} .dax", "data-mm")) == pytest.approx(
            lesion.longest_axial_diameter_mm
        )
        assert float(page.get_attribute(f"{li} .d3d", "data-mm")) == pytest.approx(
            lesion.longest_diameter_mm
        )
        assert "cm³" not in page.locator(li).inner_text()

    # A ring around each lesion under 100 mm³, in every plane through it: here the small
    # lesion the model missed, added with one 2 mm dab on 3 mm pixels. Its diameters
    # wait for the save.
    missed = ready.missed
    page.keyboard.press("0")
    page.click("#new-lesion")
    tiny = page.evaluate("window.LLViewer.selected")
    page.locator("#radius").fill("2")
    paint(page, missed["z"], [(missed["y"], missed["x"])] * 2)
    tiny_li = f'#lesion-list li[data-label="{tiny}"]'
    page.wait_for_selector(tiny_li)
    assert 0 < float(page.get_attribute(f"{tiny_li} .vol", "data-vol")) < 100
    assert page.locator(f"{tiny_li} .dax").inner_text() == "…"
    page.keyboard.press("v")
    page.click(tiny_li)
    for el in VIEWS.values():
        page.wait_for_function(f"Number(document.getElementById('{el}').dataset.smallMarks) >= 1")
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "small-lesion-ring.png"))

    # Outline only: the inside of the largest lesion shows the image (grey), not the fill.
    big = Lesion.objects.filter(study=study).order_by("-volume_mm3").first()
    page.click(f'#lesion-list li[data-label="{big.label}"]')
    page.wait_for_function(f"window.LLViewer.z === {big.largest_slice}")
    _, y, x = page.evaluate("window.LLViewer.pos")
    assert (
        page.evaluate(
            f"window.LLViewer.mask[{page.evaluate('window.LLViewer.z')} * window.LLViewer.shape[1] * window.LLViewer.shape[2] + {y} * window.LLViewer.shape[2] + {x}]"
        )
        == big.label
    )
    filled = page.evaluate(CENTRE_PIXEL, ["viewport", y, x])
    assert max(filled) - min(filled) > 20, filled  # tinted by the lesion's colour
    page.check("#outline-on")
    page.wait_for_function("window.LLViewer.overlay.outline === true")
    page.wait_for_timeout(100)
    outlined = page.evaluate(CENTRE_PIXEL, ["viewport", y, x])
    assert max(outlined) - min(outlined) <= 2, outlined  # the MR itself (grey)
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "outline-mode.png"))
    page.uncheck("#outline-on")

    # An edit: brush a stroke out of the largest lesion. Its diameters are marked stale
    # until saved, then reloaded from the server with the new measurement.
    li = f'#lesion-list li[data-label="{big.label}"]'
    old_dax = float(page.get_attribute(f"{li} .dax", "data-mm"))
    page.keyboard.press("b")
    z = big.largest_slice
    paint(page, z, [(y, x), (y, x + 6), (y, x + 12)])
    page.wait_for_selector(f"{li} .dax.stale")
    page.keyboard.press("Control+s")
    page.wait_for_selector("#dirty:has-text('all saved')")
    big.refresh_from_db()
    assert big.longest_axial_diameter_mm > old_dax
    page.wait_for_function(
        f"Number(document.querySelector('{li} .dax').dataset.mm) === {big.longest_axial_diameter_mm}"
    )
    assert page.locator(f"{li} .dax.stale").count() == 0
    assert float(page.get_attribute(f"{li} .d3d", "data-mm")) == pytest.approx(
        big.longest_diameter_mm
    )
    assert not page.js_errors, page.js_errors
