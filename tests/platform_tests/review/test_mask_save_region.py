"""The fast save path: statistics on the changed box equal those on the whole mask."""

from __future__ import annotations

import numpy as np
import pytest

from lesionloop.review.models import Lesion
from lesionloop.review.services.masks import _changed_region, _stats_in_region
from ml.lesions import changed_labels, label_stats
from ml.lesions.voxels import nonzero_voxels, voxel_changes

SPACING = (2.0, 0.6, 0.9)  # anisotropic on purpose


def _rows(mask: np.ndarray) -> dict[int, Lesion]:
    return {
        label: Lesion(label=label, bbox=row["bbox"])
        for label, row in label_stats(mask, SPACING).items()
    }


def _region(
    old: np.ndarray, new: np.ndarray, changed: set[int], rows: dict[int, Lesion]
) -> tuple[slice, slice, slice]:
    """``_changed_region`` fed as ``mask_save`` feeds it (sparse diff of two masks)."""
    old_voxels = nonzero_voxels(old)
    diff, _, _ = voxel_changes(old_voxels, nonzero_voxels(new))
    return _changed_region(new.shape, diff, changed, rows, {int(v) for v in old_voxels[1]})


def _base() -> np.ndarray:
    mask = np.zeros((9, 31, 27), dtype=np.uint16)
    mask[2:5, 3:9, 4:10] = 1
    mask[6:8, 20:26, 15:22] = 2
    mask[1, 28:30, 1:3] = 3
    return mask


def _grow_1(m: np.ndarray) -> None:
    m[5, 3:9, 4:10] = 1  # one more slice far from label 1's other voxels


def _add_4(m: np.ndarray) -> None:
    m[7:9, 2:4, 22:25] = 4


def _erase_2(m: np.ndarray) -> None:
    m[m == 2] = 0


def _shrink_2_and_grow_3(m: np.ndarray) -> None:
    m[6, 20:26, 15:22] = 0
    m[1:3, 28:31, 1:4] = 3


@pytest.mark.parametrize("edit", [_grow_1, _add_4, _erase_2, _shrink_2_and_grow_3])
def test_region_stats_match_whole_volume_stats(edit: object) -> None:
    old = _base()
    new = old.copy()
    edit(new)  # type: ignore[operator]
    changed = changed_labels(old, new)
    prob = np.random.default_rng(0).random(old.shape).astype(np.float16)
    region = _region(old, new, changed, _rows(old))
    fast = _stats_in_region(new, SPACING, region, only=sorted(changed), prob=prob)
    full = label_stats(new, SPACING, only=sorted(changed), prob=prob)
    assert fast.keys() == full.keys()
    for label, row in full.items():
        for key, value in row.items():
            assert fast[label][key] == pytest.approx(value, abs=1e-3), (label, key)


def test_unchanged_mask_gives_the_whole_volume_and_no_changes() -> None:
    old = _base()
    assert changed_labels(old, old.copy()) == set()
    region = _region(old, old.copy(), set(), _rows(old))
    assert region == tuple(slice(0, n) for n in old.shape)


def test_a_label_without_a_row_falls_back_to_the_whole_volume() -> None:
    old = _base()
    new = old.copy()
    new[0, 0, 0] = 1
    region = _region(old, new, {1}, {})
    assert region == tuple(slice(0, n) for n in old.shape)
