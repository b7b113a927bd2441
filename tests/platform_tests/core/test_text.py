"""core.text: the one cleaner for text and JSON read from uploads."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from lesionloop.core.text import JSON_DEPTH_MAX, clean_json, clean_text


@pytest.mark.parametrize(
    ("value", "max_len", "expected"),
    [
        ("PAT\x00001", None, "PAT001"),
        ("A\x01B\x1fC\x7fD\x85E", None, "ABCDE"),  # C0, DEL and C1 controls
        ("tab\tnew\nline\r", None, "tab\tnew\nline\r"),  # kept
        ("lone \ud800 surrogate \udcff", None, "lone  surrogate "),
        ("non\ufffechar\uffff", None, "nonchar"),
        ("Müller^Jörg 山田", None, "Müller^Jörg 山田"),
        ("x" * 300, 128, "x" * 128),
        ("\x00" * 10 + "ab", 1, "a"),  # cleaned before it is cut
        (None, None, ""),
        (42, None, "42"),
    ],
)
def test_clean_text(value: Any, max_len: int | None, expected: str) -> None:
    assert clean_text(value, max_len=max_len) == expected


def test_clean_json_cleans_keys_values_and_numbers() -> None:
    dirty = {
        "patient\x00_id": "A\x00B",
        "numbers": [1, 2.5, math.nan, math.inf, -math.inf, np.float32(0.5), np.int64(7)],
        "nested": {"t": ("x\ud800", True, None)},
        "long": "y" * 5000,
    }
    assert clean_json(dirty) == {
        "patient_id": "AB",
        "numbers": [1, 2.5, None, None, None, 0.5, 7],
        "nested": {"t": ["x", True, None]},
        "long": "y" * 4000,
    }


def test_clean_json_cuts_deep_nesting() -> None:
    deep: Any = "leaf"
    for _ in range(JSON_DEPTH_MAX + 5):
        deep = [deep]
    out = clean_json(deep)
    depth = 0
    while isinstance(out, list):
        out, depth = out[0], depth + 1
    assert out is None and depth == JSON_DEPTH_MAX + 1
