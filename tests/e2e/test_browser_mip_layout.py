"""The thick-slab MIP and the small-window layout of the case viewer in the real browser:
MIP pixels equal NumPy's maximum over the slab in every plane and show a lesion that is
off the current slice, a click on it goes to its slice; Home / End and the slider agree;
the *+ New lesion* shortcut is the one its tooltip names; at 1024x700 and 800x600 the
header is one line, the corner texts do not overlap and the slice slider keeps its width."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.browser_data import large_study
from tests.e2e.browser_helpers import wait_case_ready

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENS = Path(os.environ.get("LL_SCREENS", "/work/helpers/screens"))
VIEWS = {"axial": "viewport", "coronal": "viewport-coronal", "sagittal": "viewport-sagittal"}

SHOWN = """(id) => { const img = cornerstone.getImage(document.getElementById(id));
  return {rows: img.rows, cols: img.columns, px: Array.from(img.getPixelData())}; }"""


def shown(page: Any, plane: str) -> np.ndarray:
    img = page.evaluate(SHOWN, VIEWS[plane])
    return np.array(img["px"], dtype=np.int16).reshape(img["rows"], img["cols"])


def mr_volume(study: Any) -> np.ndarray:
    from lesionloop.studies import storage

    return np.load(storage.prepared_dir(study.pk) / "display_mr.npy")


def expected_mip(vol: np.ndarray, plane: str, k: int, half: int) -> np.ndarray:
    """The slab maximum by NumPy, oriented as the viewer shows it (superior row first)."""
    axis = {"axial": 0, "coronal": 1, "sagittal": 2}[plane]
    lo, hi = max(0, k - half), min(vol.shape[axis] - 1, k + half)
    mip = np.take(vol, range(lo, hi + 1), axis=axis).max(axis=axis)
    return mip if plane == "axial" else mip[::-1]


def wait_shown(page: Any, plane: str, k: int) -> None:
    page.wait_for_function(f"document.getElementById('{VIEWS[plane]}').dataset.slice === '{k}'")


def open_case(browser_login: Any, study: Any) -> Any:
    page = browser_login("cora", "cora-pass-1", next_path=f"/studies/{study.pk}/")
    wait_case_ready(page)
    page.wait_for_selector('#viewport[data-all-slices="1"]', timeout=30000)
    page.wait_for_selector('#mip-seg button[data-mip="10"]:not([disabled])')
    return page


def test_mip_shows_the_slab_maximum_in_every_plane(cast: Any, browser_login: Any) -> None:
    from lesionloop.review.models import Lesion

    # 2 mm slices on a 1 mm grid: a 10 mm slab is 5 axial slices but 11 coronal rows.
    study = large_study(shape=(40, 96, 112), spacing=(2.0, 1.0, 1.0), n_lesions=3, seed=5)
    vol = mr_volume(study)
    mask_lesion = Lesion.objects.filter(study=study).order_by("-volume_mm3").first()
    z0, y0, x0, z1, y1, x1 = mask_lesion.bbox
    page = open_case(browser_login, study)

    # Two slices past the lesion's last slice: the slice shows none of it, the slab does.
    k = z1 + 1
    page.evaluate(f"window.LLViewer.app.views.setPos([{k}, {(y0 + y1) // 2}, {(x0 + x1) // 2}])")
    wait_shown(page, "axial", k)
    single = shown(page, "axial")
    assert np.array_equal(single, vol[k])
    page.click('#mip-seg button[data-mip="10"]')
    page.wait_for_selector('#viewports[data-mip="10"]')
    page.wait_for_function(
        "document.querySelector('#viewport .corner.tr').textContent.includes('MIP 10 mm')"
    )
    pos = page.evaluate("window.LLViewer.pos")
    halves = {"axial": 2, "coronal": 5, "sagittal": 5}  # floor(10 / (2 * spacing))
    for plane, axis in (("axial", 0), ("coronal", 1), ("sagittal", 2)):
        got = shown(page, plane)
        want = expected_mip(vol, plane, pos[axis], halves[plane])
        assert got.shape == want.shape, plane
        assert np.array_equal(got, want), plane
    mip = shown(page, "axial")
    region = (slice(y0, y1), slice(x0, x1))
    assert mip[region].max() > single[region].max() + 500  # the lesion enhances by 900
    assert f"slices {k - 1}–{k + 3}" in page.locator("#viewport .corner.tr").inner_text()
    # The overlay stays the current slice's: the lesion is not drawn on slice k.
    assert (
        page.evaluate(
            f"window.LLViewer.mask.subarray({k} * 96 * 112, {k + 1} * 96 * 112).includes({mask_lesion.label})"
        )
        is False
    )

    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "mip-on-3-planes.png"))

    # A click on the bright spot goes to the slice where it really is.
    sub = mip[region]
    r, c = np.unravel_index(int(np.argmax(sub)), sub.shape)
    row, col = y0 + int(r), x0 + int(c)
    page.evaluate(f"window.LLViewer.app.views.linkFrom('axial', {row}, {col})")
    page.wait_for_function(f"window.LLViewer.z !== {k}")
    depth = page.evaluate("window.LLViewer.z")
    assert k - 2 <= depth < z1 and vol[depth, row, col] == mip[row, col]
    assert page.evaluate("window.LLViewer.pos") == [depth, row, col]

    # Off again: the single slice, pixel for pixel.
    page.keyboard.press("t")
    page.wait_for_selector('#viewports[data-mip="0"]')
    assert np.array_equal(shown(page, "axial"), vol[depth])
    page.keyboard.press("t")  # T brings back the last width
    page.wait_for_selector('#viewports[data-mip="10"]')
    # Painting needs single slices: the brush turns the MIP off, the MIP the brush.
    page.wait_for_selector("#c-lease .lease.mine")
    page.keyboard.press("b")
    page.wait_for_selector('#viewports[data-mip="0"]')
    assert page.evaluate("window.LLViewer.tool") == "brush"
    page.keyboard.press("t")
    page.wait_for_selector('#viewports[data-mip="10"]')
    assert page.evaluate("window.LLViewer.tool") == "navigate"
    assert not page.js_errors, page.js_errors


def test_home_end_slider_and_new_lesion_shortcut(cast: Any, browser_login: Any) -> None:
    study = large_study(shape=(30, 64, 72), spacing=(2.0, 1.0, 1.0), n_lesions=3, seed=9)
    page = open_case(browser_login, study)
    page.wait_for_selector("#c-lease .lease.mine")
    d, h, w = 30, 64, 72
    page.focus("#viewport")
    for key, z in (("Home", 0), ("End", d - 1), ("Home", 0)):
        page.keyboard.press(key)
        page.wait_for_function(f"window.LLViewer.z === {z}")
        assert page.locator("#slice").input_value() == str(z)
        assert page.locator("#slice-label").inner_text().startswith(f"{z + 1} / {d}")
    # The slider's left end is slice 1, as Home is.
    assert page.locator("#slice").get_attribute("min") == "0"
    assert page.locator("#slice").get_attribute("max") == str(d - 1)
    # Home / End act on the plane last used: coronal and sagittal too.
    for plane, count in (("coronal", h), ("sagittal", w)):
        box = page.locator(f"#{VIEWS[plane]}").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, 100)
        page.keyboard.press("End")
        wait_shown(page, plane, count - 1)
        page.keyboard.press("Home")
        wait_shown(page, plane, 0)

    # The tooltip names Shift+N; N alone is the next lesion.
    title = page.get_attribute("#new-lesion", "title")
    assert "Shift+N" in title and "(N)" not in title
    before = page.evaluate("[window.LLViewer.selected, window.LLViewer.localLesions.size]")
    page.keyboard.press("n")
    page.wait_for_function(f"window.LLViewer.selected !== {before[0]}")
    assert page.evaluate("window.LLViewer.localLesions.size") == before[1]
    page.keyboard.press("Shift+N")
    page.wait_for_function(f"window.LLViewer.localLesions.size === {before[1] + 1}")
    assert page.evaluate("window.LLViewer.tool") == "brush"
    assert not page.js_errors, page.js_errors


LAYOUT = """() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}; };
  const head = document.querySelector('.case-head');
  const kids = [...head.children].filter((c) => c.getBoundingClientRect().width > 0);
  const views = [...document.querySelectorAll('.viewport')].filter((v) => v.offsetParent !== null);
  return {
    head: box(head), headKids: kids.map(box), topbar: box(document.querySelector('.topbar')),
    topKids: [...document.querySelectorAll('.topbar > *')].map(box),
    slider: box(document.getElementById('slice')),
    views: views.map((v) => ({plane: v.dataset.plane, box: box(v),
      corners: [...v.querySelectorAll('.corner')].filter((c) => c.textContent.trim()).map((c) => ({cls: c.className, ...box(c)}))})),
    layout: document.getElementById('viewports').dataset.layout,
    auto: document.getElementById('viewports').dataset.autoLayout,
    docWidth: document.documentElement.scrollWidth,
  };
}"""


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


@pytest.mark.parametrize(("width", "height", "layout"), [(1024, 700, "3"), (800, 600, "1")])
def test_layout_at_small_windows(
    cast: Any, browser_login: Any, width: int, height: int, layout: str
) -> None:
    study = large_study(shape=(40, 128, 128), spacing=(2.0, 1.0, 1.0), n_lesions=4, seed=3)
    page = open_case(browser_login, study)
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_function(f"document.getElementById('viewports').dataset.layout === '{layout}'")
    page.click('#mip-seg button[data-mip="20"]')  # the longest corner text: the MIP line
    page.wait_for_function(
        "document.querySelector('#viewport .corner.tr').textContent.includes('MIP')"
    )
    page.wait_for_timeout(300)
    got = page.evaluate(LAYOUT)
    name = f"layout-{width}x{height}"
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"{name}.png"))

    # One line: every header part on the same row, the header no taller than one line.
    assert got["head"]["h"] <= 44, got["head"]
    tops = [k["y"] + k["h"] / 2 for k in got["headKids"]]
    assert max(tops) - min(tops) <= 4, got["headKids"]
    assert all(k["x"] + k["w"] <= width + 1 for k in got["headKids"]), got["headKids"]
    assert got["topbar"]["h"] <= 44 and all(k["y"] + k["h"] <= 45 for k in got["topKids"])
    assert got["docWidth"] <= width
    # Corner texts inside their view and apart from each other.
    assert got["layout"] == layout and (got["auto"] == "1") == (layout == "1")
    for view in got["views"]:
        corners = view["corners"]
        assert len(corners) >= 3, view
        for i, a in enumerate(corners):
            b0 = view["box"]
            assert a["x"] >= b0["x"] and a["x"] + a["w"] <= b0["x"] + b0["w"] + 1, (
                view["plane"],
                a,
            )
            for b in corners[i + 1 :]:
                assert not overlaps(a, b), (name, view["plane"], a, b)
    assert got["slider"]["w"] >= 140, got["slider"]

    # Wide again: the three planes the user chose come back.
    page.set_viewport_size({"width": 1600, "height": 900})
    page.wait_for_function("document.getElementById('viewports').dataset.layout === '3'")
    assert not page.js_errors, page.js_errors


MIP_ON = """[...document.querySelectorAll('#mip-seg button')]
  .filter((b) => b.classList.contains('on')).map((b) => Number(b.dataset.mip))"""
MIP_DISABLED = "[...document.querySelectorAll('#mip-seg button')].map((b) => b.disabled)"


def test_mip_buttons_show_the_real_state_in_every_view(cast: Any, browser_login: Any) -> None:
    """The lit button is the slab on screen: in CT view (never projected) Off, disabled."""
    study = large_study(shape=(24, 64, 64), spacing=(2.0, 1.0, 1.0), n_lesions=2, seed=3)
    page = open_case(browser_login, study)
    state = lambda: (page.evaluate(MIP_ON), set(page.evaluate(MIP_DISABLED)))  # noqa: E731
    assert state() == ([0], {False})
    page.click('#mip-seg button[data-mip="10"]')
    page.wait_for_selector('#viewports[data-mip="10"]')
    assert state() == ([10], {False})

    page.keyboard.press("c")  # CT: the MIP goes off, the buttons say so
    page.wait_for_selector('#viewports[data-mip="0"]')
    assert state() == ([0], {True})
    assert page.evaluate("window.LLViewer.mipMm") == 0
    page.wait_for_function(
        "document.querySelector('#viewport .corner.tr').textContent.startsWith('CT')"
    )
    assert "MIP" not in page.locator("#viewport .corner.tr").inner_text()
    page.keyboard.press("t")  # nothing to project on CT
    assert state() == ([0], {True}) and page.evaluate("window.LLViewer.mipMm") == 0

    page.keyboard.press("f")  # fused: its MR layer is projected
    page.wait_for_function(f"({MIP_DISABLED}).every((d) => !d)")
    assert state() == ([0], {False})
    page.keyboard.press("t")  # the last width again
    page.wait_for_selector('#viewports[data-mip="10"]')
    assert state() == ([10], {False})
    page.keyboard.press("m")
    page.wait_for_function("window.LLViewer.channel === 'mr'")
    assert state() == ([10], {False})
    assert "MIP 10 mm" in page.locator("#viewport .corner.tr").inner_text()
    page.click('#channel-seg button[data-channel="ct"]')
    page.wait_for_selector('#viewports[data-mip="0"]')
    assert state() == ([0], {True})
    assert not page.js_errors, page.js_errors
