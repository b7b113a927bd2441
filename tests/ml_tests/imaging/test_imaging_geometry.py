"""The shared geometry: slice axes, the slice-normal sort and the grid type."""

from __future__ import annotations

import numpy as np
import pytest

from ml.imaging.geometry import (
    SAGITTAL,
    GridGeometry,
    drop_repeated_positions,
    order_along_normal,
    slice_axes,
)


def test_slice_axes_normalise_and_cross() -> None:
    row, col, normal = slice_axes([2.0, 0.0, 0.0, 0.0, 0.0, -3.0])
    assert np.allclose(row, [1, 0, 0]) and np.allclose(col, [0, 0, -1])
    assert np.allclose(normal, [0, 1, 0])


def test_order_along_normal_is_stable_and_returns_sorted_distances() -> None:
    pos = np.array([[0, 0, 4.0], [5, 5, 1.0], [0, 0, 1.0], [0, 0, -2.0]])
    order, dist = order_along_normal(pos, np.array([0.0, 0.0, 1.0]))
    assert order.tolist() == [3, 1, 2, 0]
    assert dist.tolist() == [-2.0, 1.0, 1.0, 4.0]


def test_drop_repeated_positions_keeps_one_per_position_or_raises() -> None:
    dist = np.array([0.0, 0.004, 2.0, 4.0])
    assert drop_repeated_positions(dist, lambda a, b: True, lambda a, b: ValueError()) == [0, 2, 3]

    def clash(a: int, b: int) -> Exception:
        return ValueError(f"{a} and {b}")

    with pytest.raises(ValueError, match="0 and 1"):
        drop_repeated_positions(dist, lambda a, b: False, clash)


def test_grid_geometry_centred_round_trip_and_dict() -> None:
    g = GridGeometry.centred(np.array([10.0, -5.0, 3.0]), (4, 6, 8), (2.0, 1.0, 3.0), SAGITTAL)
    centre = g.index_to_physical(np.array([[1.5, 2.5, 3.5]]))
    assert np.allclose(centre, [[10.0, -5.0, 3.0]])
    ijk = np.array([[0.0, 0.0, 0.0], [3.0, 5.0, 7.0], [1.2, 3.4, 5.6]])
    assert np.allclose(g.physical_to_index(g.index_to_physical(ijk)), ijk)
    assert g.to_dict()["size_xyz"] == [4, 6, 8]
    assert g.reference().GetSize() == (4, 6, 8)
    assert (
        g.mismatch(
            origin_xyz=g.origin_xyz,
            spacing_xyz=g.spacing_xyz,
            direction=g.direction,
            size_xyz=(4, 6, 8),
        )
        is None
    )
    assert "size" in str(
        g.mismatch(
            origin_xyz=g.origin_xyz,
            spacing_xyz=g.spacing_xyz,
            direction=g.direction,
            size_xyz=(4, 6, 9),
        )
    )
