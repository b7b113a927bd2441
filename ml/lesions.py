"""Lesions as connected components of a binary mask.

Everything that needs "the lesions of a mask" (the volume-aware Dice loss, the
lesion-wise metrics, the predictor's lesion list) goes through this module so
that connectivity and label order are the same everywhere.
"""

from __future__ import annotations

import cc3d
import numpy as np

_CONNECTIVITIES = (6, 18, 26)


def _check(mask: np.ndarray, connectivity: int) -> np.ndarray:
    if connectivity not in _CONNECTIVITIES:
        raise ValueError(f"connectivity must be one of {_CONNECTIVITIES}, got {connectivity}")
    if mask.ndim != 3:
        raise ValueError(f"expected a (D, H, W) mask, got shape {mask.shape}")
    return np.ascontiguousarray(mask != 0, dtype=np.uint8)


def label_lesions(mask: np.ndarray, connectivity: int = 26) -> tuple[np.ndarray, int]:
    """Label the 3D connected components of ``mask``.

    Returns ``(labels, n)``: ``labels`` is int32 (D, H, W), 0 for background and
    1..n for the components ordered by volume ascending (ties by the raster
    order of their first voxel), so label 1 is always the smallest lesion.
    """
    binary = _check(mask, connectivity)
    raw, n = cc3d.connected_components(binary, connectivity=connectivity, return_N=True)
    if n == 0:
        return np.zeros(binary.shape, dtype=np.int32), 0
    raw = raw.astype(np.int64, copy=False)
    counts = np.bincount(raw.ravel(), minlength=n + 1)[1:]
    # cc3d numbers components in raster order of their first voxel, so a stable
    # sort by size keeps that order among equal sizes.
    order = np.argsort(counts, kind="stable")
    remap = np.zeros(n + 1, dtype=np.int32)
    remap[order + 1] = np.arange(1, n + 1, dtype=np.int32)
    return remap[raw], int(n)


def lesion_volume_map(mask: np.ndarray, connectivity: int = 26) -> np.ndarray:
    """Per-voxel size (in voxels) of the lesion containing the voxel, 0 outside.

    Compute it once per case on the whole ground truth, then crop it together
    with the image, so that a lesion cut by a slab or patch keeps its full
    volume (docs/METHOD.md section 1). Returns int32 (D, H, W).
    """
    binary = _check(mask, connectivity)
    raw, n = cc3d.connected_components(binary, connectivity=connectivity, return_N=True)
    if n == 0:
        return np.zeros(binary.shape, dtype=np.int32)
    raw = raw.astype(np.int64, copy=False)
    counts = np.bincount(raw.ravel(), minlength=n + 1).astype(np.int32)
    counts[0] = 0
    return counts[raw]


def voxel_volume_mm3(spacing_mm: tuple[float, float, float] | list[float]) -> float:
    """Volume of one voxel for a ``(z, y, x)`` spacing in millimetres."""
    if len(spacing_mm) != 3 or any(float(s) <= 0 for s in spacing_mm):
        raise ValueError(f"spacing_mm must be three positive numbers, got {spacing_mm!r}")
    z, y, x = (float(s) for s in spacing_mm)
    return z * y * x
