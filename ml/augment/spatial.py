"""Spatial augmentation: small rotations and isotropic scaling in millimetres.

The transform is defined in physical space, so anisotropic voxels (2 mm slices,
1 mm pixels) rotate as the head would: with ``S = diag(spacing_mm)`` (z, y, x),
``R`` the rotation (angles about the z, y, x axes, degrees; z is the slice axis,
so the first angle turns the head in-plane) and ``k`` the scale factor, an output
voxel at index ``o`` samples the input at

    i = c + S^-1 (k R)^-1 S (o - c),    c = the array's centre (index units)

(``scipy.ndimage.affine_transform``'s pull convention). Images are interpolated
linearly, labels by nearest neighbour (they stay binary and aligned with the image);
both replicate the border (``mode="nearest"``), so the head-cropped background and
the slab's ends stay plausible. Angles (0, 0, 0) and ``k = 1`` are the identity
(returned as copies, bit for bit).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def rotation_matrix(angles_deg: tuple[float, float, float]) -> np.ndarray:
    """3x3 rotation in (z, y, x) coordinates: ``Rz(a0) @ Ry(a1) @ Rx(a2)``.

    ``Rz`` turns the y-x plane (in-plane), ``Ry`` the z-x plane, ``Rx`` the z-y plane.
    """
    a, b, c = np.deg2rad(np.asarray(angles_deg, dtype=float))
    rz = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, -np.sin(b)], [0, 1, 0], [np.sin(b), 0, np.cos(b)]])
    rx = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def pull_matrix(
    angles_deg: tuple[float, float, float], scale: float, spacing_mm: tuple[float, float, float]
) -> np.ndarray:
    """Index-space matrix ``S^-1 (k R)^-1 S`` mapping output offsets to input offsets."""
    s = np.diag(np.asarray(spacing_mm, dtype=float))
    forward = scale * rotation_matrix(angles_deg)
    return np.linalg.inv(s) @ np.linalg.inv(forward) @ s


def is_identity(angles_deg: tuple[float, float, float], scale: float) -> bool:
    return scale == 1.0 and not any(angles_deg)


def warp(
    arr: np.ndarray,
    angles_deg: tuple[float, float, float],
    scale: float,
    spacing_mm: tuple[float, float, float],
    *,
    label: bool = False,
) -> np.ndarray:
    """``arr`` (D, H, W) rotated by ``angles_deg`` and scaled by ``scale`` about its centre.

    ``label=True``: nearest neighbour, same dtype (a 0/1 mask stays 0/1, a volume map
    keeps its values). Otherwise linear interpolation, float32.
    """
    if is_identity(angles_deg, scale):
        return arr.copy()
    m = pull_matrix(angles_deg, scale, spacing_mm)
    centre = (np.asarray(arr.shape, dtype=float) - 1.0) / 2.0
    offset = centre - m @ centre
    if label:
        src = arr.view(np.uint8) if arr.dtype == np.bool_ else arr  # scipy has no bool output
        out = ndimage.affine_transform(src, m, offset=offset, order=0, mode="nearest")
        return out.astype(arr.dtype, copy=False)
    out = ndimage.affine_transform(
        arr.astype(np.float32, copy=False), m, offset=offset, order=1, mode="nearest"
    )
    return out.astype(np.float32, copy=False)
