"""The viewer's sparse gzip encoder (frontend_static/js/gzip.js) writes gzip that Python's
gzip module (what the server uses) reads back byte for byte."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
GZIP_JS = Path(__file__).resolve().parents[2] / "frontend_static" / "js" / "gzip.js"


def test_sparse_gzip_round_trips(browser_chromium: Any) -> None:
    page = browser_chromium.new_page()
    try:
        page.set_content("<html><body></body></html>")
        page.add_script_tag(path=str(GZIP_JS))
        assert page.evaluate("LLGzip.selfTest()") is True
        for seed in range(1, 9):
            raw, gz = page.evaluate(
                """(seed) => {
                    let s = seed;
                    const rnd = () => (s = (s * 9301 + 49297) % 233280) / 233280;
                    const n = 1 + Math.floor(rnd() * 200000);
                    const a = new Uint16Array(n);
                    for (let k = 0; k < n; ) {
                        const run = Math.floor(rnd() * (rnd() < 0.2 ? 5000 : 12));
                        const v = rnd() < 0.6 ? 0 : Math.floor(rnd() * (rnd() < 0.5 ? 5 : 65535));
                        a.fill(v, k, k + run);
                        k += Math.max(1, run);
                    }
                    return [Array.from(new Uint8Array(a.buffer)), Array.from(LLGzip.encode(a))];
                }""",
                seed,
            )
            assert gzip.decompress(bytes(gz)) == bytes(raw), seed
        # Edge cases: empty, all zeros (runs longer than 258 and of every remainder), one voxel.
        for js in (
            "new Uint16Array(0)",
            "new Uint16Array(131072)",
            "new Uint16Array(261)",
            "(() => { const a = new Uint16Array(1000); a[999] = 7; return a; })()",
        ):
            raw, gz = page.evaluate(
                f"(() => {{ const a = {js}; return [Array.from(new Uint8Array(a.buffer)), Array.from(LLGzip.encode(a))]; }})()"
            )
            assert gzip.decompress(bytes(gz)) == bytes(raw), js
    finally:
        page.close()
