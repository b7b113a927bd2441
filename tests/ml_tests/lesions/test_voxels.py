"""A label map as its nonzero voxels (ml.lesions.voxels): same answers as the dense
NumPy expressions, hand-checked on small grids."""

from __future__ import annotations

import numpy as np
import pytest

from ml.lesions.voxels import (
    dense_from_voxels,
    nonzero_voxels,
    voxel_changes,
    voxels_from_bytes,
    voxels_to_bytes,
)


def _grid(shape: tuple[int, ...], marks: dict[tuple[int, ...], int], dtype: str) -> np.ndarray:
    out = np.zeros(shape, dtype=dtype)
    for where, label in marks.items():
        out[where] = label
    return out


# (shape, {voxel: label}, dtype, expected flat indices): index = (z * H + y) * W + x
CASES = [
    ((2, 3, 4), {}, "uint16", []),
    ((2, 3, 4), {(0, 0, 0): 1, (1, 2, 3): 7}, "uint16", [0, 23]),
    ((2, 3, 4), {(1, 0, 1): 2, (0, 1, 0): 5}, "uint16", [4, 13]),
    # the first pass reads blocks of 1024 voxels: voxels in the first block, the last
    # whole block and the tail after it (3 * 700 = 2100 = 2 * 1024 + 52)
    ((3, 7, 100), {(0, 0, 3): 1, (1, 3, 47): 2, (2, 6, 99): 3}, "uint16", [3, 1047, 2099]),
    ((1, 1, 2048), {(0, 0, 1023): 4, (0, 0, 1024): 4}, "int32", [1023, 1024]),
    ((1, 2, 3), {(0, 1, 2): -1}, "int8", [5]),  # negative labels are nonzero too
]


@pytest.mark.parametrize(("shape", "marks", "dtype", "expected"), CASES)
def test_nonzero_voxels_lists_every_labelled_voxel_in_c_order(
    shape: tuple[int, ...], marks: dict, dtype: str, expected: list[int]
) -> None:
    labels = _grid(shape, marks, dtype)
    idx, values = nonzero_voxels(labels)
    assert idx.tolist() == expected
    assert values.tolist() == [labels.flat[i] for i in expected]
    assert np.array_equal(dense_from_voxels((idx, values), shape, dtype), labels)


def test_nonzero_voxels_equals_flatnonzero_on_random_sparse_masks() -> None:
    rng = np.random.default_rng(3)
    for shape in [(5, 17, 29), (4, 64, 64), (9, 1, 1)]:
        labels = (rng.random(shape) < 0.01) * rng.integers(1, 9, size=shape)
        labels = labels.astype(np.uint16)
        idx, values = nonzero_voxels(labels)
        assert np.array_equal(idx, np.flatnonzero(labels))
        assert np.array_equal(values, labels.ravel()[idx])


def test_nonzero_voxels_refuses_a_float_map() -> None:
    with pytest.raises(ValueError, match="integer"):
        nonzero_voxels(np.zeros((2, 2, 2), dtype=np.float32))


def test_voxel_changes_lists_the_voxels_whose_label_differs() -> None:
    old = _grid((1, 2, 4), {(0, 0, 0): 1, (0, 0, 1): 1, (0, 1, 3): 2}, "uint16")
    new = old.copy()
    new[0, 0, 1] = 0  # label 1 loses a voxel      (flat 1: 1 -> 0)
    new[0, 1, 3] = 3  # label 2 repainted as 3      (flat 7: 2 -> 3)
    new[0, 1, 0] = 3  # label 3 gains a voxel       (flat 4: 0 -> 3)
    idx, before, after = voxel_changes(nonzero_voxels(old), nonzero_voxels(new))
    assert idx.tolist() == [1, 4, 7]
    assert before.tolist() == [1, 0, 2]
    assert after.tolist() == [0, 3, 3]
    assert np.array_equal(idx, np.flatnonzero(old != new))


def test_voxel_changes_of_equal_masks_is_empty() -> None:
    labels = _grid((2, 2, 2), {(1, 1, 1): 4}, "uint16")
    idx, before, after = voxel_changes(nonzero_voxels(labels), nonzero_voxels(labels.copy()))
    assert idx.size == before.size == after.size == 0


def test_bytes_round_trip() -> None:
    labels = _grid((2, 3, 4), {(0, 0, 2): 9, (1, 2, 0): 65535}, "uint16")
    data = voxels_to_bytes(nonzero_voxels(labels))
    assert len(data) == 8 + 2 * 10  # count, then 8 + 2 bytes per voxel
    idx, values = voxels_from_bytes(data, labels.size)
    assert idx.tolist() == [2, 20]
    assert values.tolist() == [9, 65535]


def _record(idx: list[int], values: list[int]) -> bytes:
    return voxels_to_bytes((np.array(idx, dtype=np.int64), np.array(values, dtype=np.uint16)))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        _record([1, 2], [1, 1])[:-1],  # torn
        _record([1, 2], [1, 1]) + b"\0",  # longer than its count says
        _record([2, 1], [1, 1]),  # not ascending
        _record([1, 1], [1, 1]),  # repeated
        _record([1, 24], [1, 1]),  # beyond a grid of 24 voxels
        _record([1, 2], [1, 0]),  # a zero label is not a nonzero voxel
    ],
)
def test_malformed_records_read_as_none(data: bytes) -> None:
    assert voxels_from_bytes(data, 24) is None
