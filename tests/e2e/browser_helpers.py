"""Browser fixtures and helpers for tests/e2e/test_browser_*.py: Playwright for Python
driving Debian's chromium (never a downloaded browser) against pytest-django's
``live_server``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
VIEWPORT = {"width": 1600, "height": 900}


def launch_chromium(pw: Any) -> Any:
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


@pytest.fixture(scope="session")
def browser_chromium() -> Iterator[Any]:
    """One chromium for the whole session."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install chromium or set CHROMIUM)")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests
    # make between browser steps are synchronous and safe.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        yield browser
        browser.close()


@pytest.fixture
def browser_login(browser_chromium: Any, live_server: Any) -> Iterator[Callable[..., Any]]:
    """``page = browser_login("cora", "cora-pass-1")``: a fresh logged-in browser context.
    Console errors and failed page scripts are collected on ``page.js_errors``."""
    contexts: list[Any] = []

    def login(username: str, password: str, *, next_path: str = "/") -> Any:
        context = browser_chromium.new_context(viewport=VIEWPORT)
        contexts.append(context)
        page = context.new_page()
        page.js_errors = []  # type: ignore[attr-defined]
        page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
        page.on(
            "console",
            lambda msg: (
                page.js_errors.append(msg.text)
                if msg.type == "error" and "409" not in msg.text and "403" not in msg.text
                else None
            ),
        )
        page.goto(f"{live_server.url}/accounts/login/?next={next_path}")
        if not (ARTIFACTS / "login.png").exists():
            shot(page, "login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}{next_path}*")
        page.base = live_server.url  # type: ignore[attr-defined]
        return page

    yield login
    # Stop pollers and hand the review lease back before the test database is flushed:
    # a request still running in the live server while it is flushed can deadlock.
    for context in contexts:
        for page in context.pages:
            try:
                page.evaluate(
                    "window.LLViewer && window.LLViewer.shutdown ? window.LLViewer.shutdown() : null"
                )
                page.goto("about:blank")
            except Exception:  # noqa: BLE001 - a closed or crashed page has nothing to stop
                pass
        context.close()
    time.sleep(0.3)


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def wait_case_ready(page: Any) -> None:
    """The case viewer has shown an image and loaded the mask."""
    page.wait_for_selector('#viewport[data-first-image="1"]', timeout=20000)
    page.wait_for_selector('#viewport[data-mask-loaded="1"]', timeout=20000)


def pixel_to_page(page: Any, y: float, x: float) -> tuple[float, float]:
    """Page coordinates of the centre of image pixel (row y, column x)."""
    return page.evaluate(
        """([y, x]) => {
            const el = document.getElementById('viewport');
            const c = cornerstone.pixelToCanvas(el, {x: x + 0.5, y: y + 0.5});
            const r = el.querySelector('canvas').getBoundingClientRect();
            const ratio = el.querySelector('canvas').width / r.width;
            return [r.left + c.x / ratio, r.top + c.y / ratio];
        }""",
        [y, x],
    )


def lesion_rows(page: Any) -> list[dict[str, Any]]:
    return page.evaluate(
        """() => [...document.querySelectorAll('#lesion-list li')].map(li => ({
            label: Number(li.dataset.label),
            vol: li.querySelector('.vol').dataset.vol === '' ? null : Number(li.querySelector('.vol').dataset.vol),
            decision: li.querySelector('.dec .badge').textContent.trim(),
            selected: li.classList.contains('selected'),
        }))"""
    )


def paint(page: Any, z: int, points: list[tuple[float, float]]) -> None:
    """Go to slice z and drag the current tool through image pixels ``points``."""
    page.locator("#slice").fill(str(z))
    page.wait_for_function(f"window.LLViewer.z === {z}")
    first = pixel_to_page(page, *points[0])
    page.mouse.move(*first)
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*pixel_to_page(page, *p), steps=3)
    page.mouse.up()
