"""Checks of exported RTSTRUCT contours against a mask, through a CT's geometry."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def contour_points(item) -> np.ndarray:
    """A ContourSequence item's ContourData as (N, 3) mm."""
    return np.asarray([float(v) for v in item.ContourData]).reshape(-1, 3)


def assert_half_a_voxel_from_centres(
    pts: np.ndarray, image: sitk.Image, in_slice: np.ndarray, k: int
) -> None:
    """Every point lies within half a pixel (in-plane) of the centre of a voxel of
    ``in_slice`` (the lesion's mask on slice ``k``), and within half a slice of its plane;
    voxel -> mm goes through ``image`` (independently of the exporter)."""
    spacing = np.asarray(image.GetSpacing())
    ys, xs = np.nonzero(in_slice)
    centres = np.asarray(
        [
            image.TransformIndexToPhysicalPoint((int(x), int(y), k))
            for y, x in zip(ys, xs, strict=True)
        ]
    )
    near = np.linalg.norm(pts[:, None, :] - centres[None], axis=2).min(1)
    assert near.max() <= 0.5 * spacing[:2].max() + 1e-3
    assert np.abs(pts[:, 2] - centres[0, 2]).max() <= 0.5 * spacing[2]
