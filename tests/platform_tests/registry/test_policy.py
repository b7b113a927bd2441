from __future__ import annotations

import pytest

from lesionloop.registry import policy


@pytest.mark.parametrize(
    ("candidate", "active", "worse"),
    [
        ({"dsc": 0.70, "small_sensitivity": 0.6}, {"dsc": 0.70, "small_sensitivity": 0.6}, False),
        (
            {"dsc": 0.685, "small_sensitivity": 0.6},
            {"dsc": 0.70, "small_sensitivity": 0.6},
            False,
        ),  # within 0.02
        ({"dsc": 0.67, "small_sensitivity": 0.6}, {"dsc": 0.70, "small_sensitivity": 0.6}, True),
        ({"dsc": 0.90, "small_sensitivity": 0.5}, {"dsc": 0.70, "small_sensitivity": 0.6}, True),
        (
            {"dsc": 0.70, "small_sensitivity": None},
            {"dsc": 0.70, "small_sensitivity": 0.6},
            False,
        ),  # not judged
        ({}, {}, False),
    ],
)
def test_compare(candidate: dict, active: dict, worse: bool) -> None:
    result = policy.compare(candidate, active)
    assert result["worse"] is worse
    assert [c["metric"] for c in result["checks"]] == ["small_sensitivity", "dsc"]


def test_tolerance_from_settings(settings: object) -> None:
    settings.LESIONLOOP_PROMOTION_DSC_TOLERANCE = 0.0
    assert policy.compare({"dsc": 0.69}, {"dsc": 0.70})["worse"]
