"""Rulers kept with the study and the 3D brush outline, in the real browser: a ruler drawn
in the coronal plane is saved, comes back after a reload and is deleted with Esc; the 3D
brush is outlined in all three planes by the voxels it paints on each plane's slice."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser_data import large_study
from tests.e2e.test_browser_measure import RULER_DRAWN, drag
from tests.e2e.test_browser_planes import pixel_page, wait_planes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENS = Path(os.environ.get("LL_SCREENS", "/tmp/viewer-gaps"))


def test_a_ruler_comes_back_after_a_reload_and_the_3d_brush_shows_its_ball(
    cast: Any, browser_login: Any
) -> None:
    from lesionloop.audit.models import AuditEvent
    from lesionloop.review.models import Ruler

    # 2 mm slices on a 1 mm grid: a coronal row is a 2 mm slice.
    study = large_study(shape=(40, 128, 128), spacing=(2.0, 1.0, 1.0), n_lesions=3, seed=5)
    page = browser_login("cora", "cora-pass-1", next_path=f"/studies/{study.pk}/")
    wait_planes(page)
    k = int(page.get_attribute("#viewport-coronal", "data-slice"))
    page.keyboard.press("d")
    drag(page, "coronal", (10, 40), (20, 40))  # 10 slices of 2 mm
    page.wait_for_selector("#viewport-coronal[data-ruler-saved]")
    ruler = Ruler.objects.get(study=study, user=cast.clinician)
    assert (ruler.plane, ruler.slice_index) == ("coronal", k)
    assert ruler.length_mm == pytest.approx(20.0, abs=0.25)
    assert AuditEvent.objects.filter(event_type="ruler_saved", study=study).count() == 1

    page.reload()
    wait_planes(page)
    page.wait_for_selector("#viewport-coronal[data-ruler-saved]")
    line = page.evaluate("window.LLViewer.measure.lines.coronal")
    assert line["id"] == ruler.pk and line["k"] == k
    assert line["mm"] == pytest.approx(ruler.length_mm)
    assert int(page.get_attribute("#viewport-coronal", "data-slice")) == k
    page.wait_for_function(f"({RULER_DRAWN})(['viewport-coronal', 15, 40])")

    # A second ruler on the axial plane, then the 3D brush (radius 3 mm) over the cursor
    # voxel: the ball's sections on the three slices through that voxel, in voxels
    # (hand-worked with the face rule along z, see shapes.sphereSection):
    #   axial: the 29 pixels within 3 mm; coronal / sagittal: 7 on the centre row and
    #   5 on the slices above and below (face 1 mm: sqrt(9 - 1) = 2.83 mm), 17 in all.
    page.keyboard.press("d")  # ruler mode does not outlive the page
    drag(page, "axial", (30, 20), (30, 50))
    page.wait_for_selector("#viewport[data-ruler-saved]")
    page.wait_for_selector("#c-lease .lease.mine")
    page.keyboard.press("b")
    page.check("#brush-3d")
    z, y, x = page.evaluate("window.LLViewer.pos")
    page.mouse.move(*pixel_page(page, "axial", y, x))
    page.mouse.move(*pixel_page(page, "axial", y, x + 0.1))
    for el, n in (("viewport", 29), ("viewport-coronal", 17), ("viewport-sagittal", 17)):
        page.wait_for_selector(f"#{el}[data-brush-cells='{n}']")
    # The ball centred 2, 3, 4 rows (1 mm each) from the coronal slice: its section there
    # is 5 + 5 + 5 (y 2 mm off: sqrt(9 - 4) = 2.24 mm, on the slices above and below
    # sqrt(8 - 4) = 2 mm), then the one voxel 3 mm off, then nothing.
    for dy, n in ((2, 15), (3, 1), (4, 0)):
        page.mouse.move(*pixel_page(page, "axial", y + dy, x))
        page.wait_for_selector(f"#viewport-coronal[data-brush-cells='{n}']")
        assert page.get_attribute("#viewport-sagittal", "data-brush-cells") == "17"
        assert page.get_attribute("#viewport", "data-brush-cells") == "29"

    # For the screenshot: the cursor 15 mm to the left of the lesion, in plain brain, where
    # the outline stands out (the rulers stay: the axial and coronal slices are the same).
    page.evaluate(f"window.LLViewer.app.views.setPos([{z}, {y}, {x + 15}])")
    page.mouse.move(*pixel_page(page, "axial", y, x + 15))
    for el, n in (("viewport", 29), ("viewport-coronal", 17), ("viewport-sagittal", 17)):
        page.wait_for_selector(f"#{el}[data-brush-cells='{n}']")
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "three-planes-ruler-brush3d.png"))
    for plane, el in (
        ("axial", "viewport"),
        ("coronal", "viewport-coronal"),
        ("sagittal", "viewport-sagittal"),
    ):
        page.locator(f"#{el}").screenshot(path=str(SCREENS / f"{plane}-brush3d.png"))

    # Esc deletes the rulers, on the server too.
    page.keyboard.press("v")
    page.keyboard.press("Escape")
    page.wait_for_function("Object.keys(window.LLViewer.measure.lines).length === 0")
    for _ in range(50):
        if not Ruler.objects.filter(study=study).exists():
            break
        page.wait_for_timeout(100)
    assert not Ruler.objects.filter(study=study).exists()
    assert AuditEvent.objects.filter(event_type="ruler_deleted", study=study).count() == 1
    assert not page.js_errors, page.js_errors
