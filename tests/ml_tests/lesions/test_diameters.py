"""Longest diameters (voxel centres): hand-computed answers, degenerate hulls, odd grids."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.lesions import label_stats
from ml.lesions.diameters import boundary, lesion_diameters, max_pairwise_distance


def _mask(shape, *voxels):
    m = np.zeros(shape, dtype=np.uint8)
    for v in voxels:
        m[v] = 1
    return m


def _sphere(radius_mm, spacing, shape):
    """Voxel centres within ``radius_mm`` of the centre voxel's centre."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    centre = [n // 2 for n in shape]
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, spacing, strict=True))
    return (d2 <= radius_mm**2).astype(np.uint8)


def _line_z(n):
    m = np.zeros((n + 2, 3, 3), dtype=np.uint8)
    m[1 : n + 1, 1, 1] = 1
    return m


def _square(k):
    m = np.zeros((3, k + 2, k + 2), dtype=np.uint8)
    m[1, 1 : k + 1, 1 : k + 1] = 1
    return m


def _cube(k):
    m = np.zeros((k, k, k), dtype=np.uint8)
    m[:] = 1
    return m


def _diagonal(n):
    m = np.zeros((n, n, n), dtype=np.uint8)
    m[np.arange(n), np.arange(n), np.arange(n)] = 1
    return m


CASES = [
    # name, mask, spacing (z, y, x) mm, longest axial mm, longest 3D mm
    ("empty", np.zeros((4, 5, 6), np.uint8), (2.0, 1.0, 1.0), 0.0, 0.0),
    ("single voxel", _mask((3, 3, 3), (1, 1, 1)), (2.0, 0.7, 0.7), 0.0, 0.0),
    ("line 1x1x5 along z, 2 mm slices", _line_z(5), (2.0, 1.0, 1.0), 0.0, 8.0),
    ("line 1x1x100 along z (hull, rank 1)", _line_z(100), (2.0, 1.0, 1.0), 0.0, 198.0),
    ("two voxels 3-4-5 in one slice", _mask((1, 4, 5), (0, 0, 0), (0, 3, 4)), (5, 1, 1), 5, 5),
    (
        "square 4x4 in one slice",
        _square(4),
        (2.0, 0.5, 0.5),
        1.5 * math.sqrt(2),
        1.5 * math.sqrt(2),
    ),
    # 100 boundary points, all on one plane: the hull is taken in 2D (rank 2)
    (
        "square 10x10 in one slice",
        _square(10),
        (2.0, 0.5, 0.5),
        4.5 * math.sqrt(2),
        4.5 * math.sqrt(2),
    ),
    ("cube 5x5x5 (hull, rank 3)", _cube(5), (2.0, 1.0, 1.0), math.sqrt(32), math.sqrt(96)),
    ("diagonal of 70 voxels", _diagonal(70), (2.0, 1.0, 1.0), 0.0, 69 * math.sqrt(6)),
    # centre on a voxel centre and R a multiple of every spacing: the poles are voxel
    # centres at exactly R, so both diameters are exactly 2R
    (
        "sphere R=10 mm on 2 x 0.5 x 0.5",
        _sphere(10, (2, 0.5, 0.5), (13, 45, 45)),
        (2, 0.5, 0.5),
        20,
        20,
    ),
    ("sphere R=6 mm on 3 x 1 x 0.5", _sphere(6, (3, 1, 0.5), (7, 15, 27)), (3, 1, 0.5), 12, 12),
]


@pytest.mark.parametrize("name,mask,spacing,axial,longest", CASES, ids=[c[0] for c in CASES])
def test_hand_computed_diameters(name, mask, spacing, axial, longest):
    d = lesion_diameters(mask, spacing)
    assert d.longest_axial_diameter_mm == pytest.approx(axial, abs=1e-9)
    assert d.longest_diameter_mm == pytest.approx(longest, abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_hull_agrees_with_all_pairs_on_random_blobs(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(3, 14, size=3))
    mask = (rng.random(shape) < 0.3).astype(np.uint8)
    spacing = tuple(float(v) for v in rng.uniform(0.4, 3.0, size=3))
    pts = np.argwhere(mask).astype(float) * spacing
    brute_3d = max((float(np.max(np.linalg.norm(pts - p, axis=1))) for p in pts), default=0.0)
    brute_ax = 0.0
    for z in np.unique(pts[:, 0]):
        sl = pts[pts[:, 0] == z]
        brute_ax = max(brute_ax, max(float(np.max(np.linalg.norm(sl - p, axis=1))) for p in sl))
    d = lesion_diameters(mask, spacing)
    assert d.longest_diameter_mm == pytest.approx(brute_3d, rel=1e-12)
    assert d.longest_axial_diameter_mm == pytest.approx(brute_ax, rel=1e-12)


def test_boundary_keeps_only_surface_voxels():
    edge = boundary(_cube(5))
    assert edge.sum() == 125 - 27 and not edge[1:4, 1:4, 1:4].any()
    assert boundary(np.zeros((2, 2, 2))).sum() == 0


def test_max_pairwise_distance_of_few_points():
    assert max_pairwise_distance(np.zeros((0, 3))) == 0.0
    assert max_pairwise_distance(np.array([[1.0, 2.0, 3.0]])) == 0.0


@pytest.mark.parametrize(
    "mask,spacing",
    [
        (np.zeros((3, 3)), (1, 1, 1)),
        (np.zeros((3, 3, 3)), (1, 1)),
        (np.zeros((3, 3, 3)), (1, 0, 1)),
        (np.zeros((3, 3, 3)), (1, float("nan"), 1)),
    ],
)
def test_invalid_input_raises(mask, spacing):
    with pytest.raises(ValueError):
        lesion_diameters(mask, spacing)


def test_label_stats_rows_carry_diameters_of_each_label():
    labels = np.zeros((6, 20, 20), dtype=np.uint16)
    labels[1:4, 2, 2] = 1  # 3 voxels along z: 4 mm at 2 mm slices, 0 mm axial
    labels[2, 10:14, 10:13] = 2  # 4 x 3 rectangle in one slice
    rows = label_stats(labels, (2.0, 0.5, 0.5))
    assert rows[1]["longest_diameter_mm"] == 4.0
    assert rows[1]["longest_axial_diameter_mm"] == 0.0
    assert rows[2]["longest_axial_diameter_mm"] == round(math.hypot(1.5, 1.0), 2)
    assert rows[2]["longest_diameter_mm"] == rows[2]["longest_axial_diameter_mm"]
