"""Runs the viewer's JavaScript unit tests (tests/js/*.test.mjs, pure ES modules of
frontend_static/js/case/) with ``node --test`` so that the pytest suite covers them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

JS_TESTS = Path(__file__).resolve().parent
REPO = JS_TESTS.parents[1]


def test_node_unit_tests_pass() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip(
            "node is not installed: the viewer's JavaScript unit tests (tests/js) need Node >= 20"
        )
    files = sorted(JS_TESTS.glob("*.test.mjs"))
    assert files, "no JavaScript unit tests found in tests/js"
    result = subprocess.run(
        [node, "--test", "tests/js"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = "\n".join(line for line in result.stdout.splitlines() if line.startswith("# "))
    assert result.returncode == 0, (
        f"node --test failed:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
    )
    assert "# fail 0" in summary, summary
