"""Review effort from the model's pre-contour and the approved mask (hand-made masks)."""

from __future__ import annotations

import numpy as np
import pytest

from ml.metrics.review_effort import review_effort

SHAPE = (5, 12, 11)  # odd shape


def pre_contour() -> np.ndarray:
    """Lesion 1: 2x3x3 = 18 voxels; lesion 2: 1x2x2 = 4 voxels."""
    m = np.zeros(SHAPE, np.uint16)
    m[0:2, 0:3, 0:3] = 1
    m[3, 8:10, 8:10] = 2
    return m


def unchanged(m: np.ndarray) -> np.ndarray:
    return m


def grow_lesion_1_by_3(m: np.ndarray) -> np.ndarray:
    m[0, 5, 0:3] = 1  # 3 voxels painted with label 1 (a separate blob of the same lesion)
    return m


def erase_2_voxels_of_lesion_1(m: np.ndarray) -> np.ndarray:
    m[0, 0, 0:2] = 0
    return m


def draw_lesion_3(m: np.ndarray) -> np.ndarray:
    m[4, 0:2, 8:11] = 3  # 6 voxels
    return m


CASES = [
    # name, edit, kept, expected counts
    (
        "all accepted unchanged",
        unchanged,
        [1, 2],
        dict(
            accepted_unchanged=2,
            edited=0,
            rejected=0,
            added=0,
            voxels_added=0,
            voxels_removed=0,
            edited_voxels=0,
            accepted_unchanged_fraction=1.0,
        ),
    ),
    (
        "lesion 1 grown by 3 voxels",
        grow_lesion_1_by_3,
        [1, 2],
        dict(
            accepted_unchanged=1,
            edited=1,
            rejected=0,
            added=0,
            voxels_added=3,
            voxels_removed=0,
            edited_voxels=3,
            accepted_unchanged_fraction=0.5,
        ),
    ),
    (
        "lesion 1 trimmed by 2 voxels",
        erase_2_voxels_of_lesion_1,
        [1, 2],
        dict(
            accepted_unchanged=1,
            edited=1,
            rejected=0,
            added=0,
            voxels_added=0,
            voxels_removed=2,
            edited_voxels=2,
            accepted_unchanged_fraction=0.5,
        ),
    ),
    (
        "lesion 2 rejected",
        unchanged,
        [1],
        dict(
            accepted_unchanged=1,
            edited=0,
            rejected=1,
            added=0,
            voxels_added=0,
            voxels_removed=4,
            edited_voxels=0,
            accepted_unchanged_fraction=0.5,
        ),
    ),
    (
        "lesion 3 drawn",
        draw_lesion_3,
        [1, 2, 3],
        dict(
            accepted_unchanged=2,
            edited=0,
            rejected=0,
            added=1,
            voxels_added=6,
            voxels_removed=0,
            edited_voxels=0,
            accepted_unchanged_fraction=1.0,
        ),
    ),
    (
        "everything rejected",
        unchanged,
        [],
        dict(
            accepted_unchanged=0,
            edited=0,
            rejected=2,
            added=0,
            voxels_added=0,
            voxels_removed=22,
            edited_voxels=0,
            accepted_unchanged_fraction=0.0,
        ),
    ),
]


@pytest.mark.parametrize(("name", "edit", "kept", "expected"), CASES, ids=[c[0] for c in CASES])
def test_review_effort(name: str, edit, kept: list[int], expected: dict) -> None:
    pre = pre_contour()
    final = edit(pre.copy())
    effort = review_effort(pre, final, kept)
    assert effort["model_lesions"] == 2
    assert {k: effort[k] for k in expected} == expected


def test_nothing_proposed_and_everything_drawn() -> None:
    pre = np.zeros(SHAPE, np.uint16)
    final = draw_lesion_3(pre.copy())
    effort = review_effort(pre, final, [3])
    assert effort["model_lesions"] == 0 and effort["added"] == 1
    assert effort["accepted_unchanged_fraction"] is None and effort["voxels_added"] == 6


def test_shapes_must_match() -> None:
    with pytest.raises(ValueError):
        review_effort(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)), [])
