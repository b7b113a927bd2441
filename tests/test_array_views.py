"""``sitk.GetArrayViewFromImage`` returns a view into the image's buffer that does not
keep the image alive: a view of a temporary (``GetArrayViewFromImage(f(x))``) reads freed
memory once the temporary is collected, which made the model grid's head centre (and so
the ground truth's position) differ between two runs on the same study. Every call in the
project must name its image; this guard parses every module and fails on a temporary."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREES = ("ml", "platform", "benchmarks", "scripts", "tests")


def temporaries(source: str) -> list[int]:
    """Line numbers where ``GetArrayViewFromImage`` is given anything but a name,
    attribute or subscript (all of which keep their image referenced)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name != "GetArrayViewFromImage" or not node.args:
            continue
        if not isinstance(node.args[0], ast.Name | ast.Attribute | ast.Subscript):
            lines.append(node.lineno)
    return lines


# (source, lines flagged)
CASES = [
    ("a = sitk.GetArrayViewFromImage(img) > 0", []),
    ("a = sitk.GetArrayViewFromImage(self.image)", []),
    ("a = sitk.GetArrayViewFromImage(images[0])", []),
    ("a = sitk.GetArrayViewFromImage(head_mask(ct, -400.0)) > 0", [1]),
    ("x = 1\na = GetArrayViewFromImage(sitk.Cast(img, 8))", [2]),
    ("a = sitk.GetArrayFromImage(head_mask(ct, -400.0))", []),  # a copy is safe
]


@pytest.mark.parametrize(("source", "flagged"), CASES)
def test_the_detector_flags_temporaries_only(source: str, flagged: list[int]) -> None:
    assert temporaries(source) == flagged


def test_no_array_view_of_a_temporary_image() -> None:
    found = []
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*.py")):
            for line in temporaries(path.read_text()):
                found.append(f"{path.relative_to(ROOT)}:{line}")
    assert found == [], "name the image before taking an array view of it: " + ", ".join(found)
