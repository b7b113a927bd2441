"""Lesions as connected components of a binary mask, and per-lesion statistics.

Everything that needs "the lesions of a mask" (the volume-aware Dice loss, the
lesion-wise metrics, the predictor's lesion list, the review platform's lesion
rows) goes through this module so that connectivity, label order and the
statistics are the same everywhere:

- ``label_lesions`` / ``lesion_volume_map``: 3D connected components (cc3d).
- ``lesion_stats``: volume, centroid, bounding box, largest slice and probability
  summaries of each label of a label map (the predictor's ``summarise_lesions`` and
  the platform's ``label_stats`` rows are both made from it).
- ``label_stats`` / ``changed_labels``: the review platform's JSON-able rows (with the
  longest diameters of ``ml.lesions.diameters``) and mask diffs.
- ``ml.lesions.diameters``: longest axial and 3D diameters (mm).
- ``ml.lesions.grow``: a lesion grown from a click (click to add).

NumPy only at import time (cc3d is imported by the functions that label): the web
process imports this module, and it never imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
    import cc3d

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
    import cc3d

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


@dataclass(frozen=True)
class LesionStats:
    """One label's statistics; voxel coordinates are (z, y, x) array indices."""

    label: int
    volume_vox: int
    volume_mm3: float  # volume_vox * voxel volume (mm3)
    centroid_vox: tuple[float, float, float]  # mean voxel index (z, y, x)
    centroid_mm: tuple[float, float, float]  # centroid_vox * spacing_mm (grid frame, no origin)
    bbox: tuple[int, int, int, int, int, int]  # z0, y0, x0, z1, y1, x1 (exclusive)
    largest_slice: int  # the z index holding most of the label's voxels (first on ties)
    mean_prob: float | None = None  # mean of ``prob`` over the label's voxels
    max_prob: float | None = None  # max of ``prob`` (and of 0) over them
    disagreement: float | None = None  # mean |a - b| of the ``disagreement`` pair over them


def _labelled_voxels(
    labels: np.ndarray, only: Sequence[int] | None
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """``(idx, lab)``: the (z, y, x) index arrays of the labelled voxels (restricted to
    the labels in ``only`` when given) and their int64 labels."""
    idx = np.nonzero(labels)
    lab = labels[idx].astype(np.int64)
    if only is not None and lab.size:
        keep = np.isin(lab, np.asarray(list(only), dtype=np.int64))
        idx = tuple(i[keep] for i in idx)
        lab = lab[keep]
    return idx, lab


def _per_label_mean_max(
    lab: np.ndarray, values: np.ndarray, counts: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-label mean of ``values`` (float64, one per labelled voxel) and max of
    ``values`` and 0; both (n,), NaN-free only where ``counts`` > 0."""
    total = np.bincount(lab, weights=values, minlength=n)
    top = np.zeros(n)
    np.maximum.at(top, lab, values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / counts, top


def _largest_slices(idx: tuple[np.ndarray, ...], lab: np.ndarray, n: int, depth: int) -> np.ndarray:
    """(n,) the z index with the most voxels of each label (the first on ties)."""
    per_slice = np.bincount(lab * depth + idx[0], minlength=n * depth).reshape(n, depth)
    return per_slice.argmax(axis=1)


def lesion_stats(
    labels: np.ndarray,
    spacing_mm: Sequence[float],
    *,
    only: Sequence[int] | None = None,
    prob: np.ndarray | None = None,
    disagreement: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[int, LesionStats]:
    """Statistics of every label present in ``labels``, keyed by label, ascending.

    ``labels``: non-negative integer (D, H, W) label map, 0 = background.
    ``spacing_mm``: (z, y, x) voxel spacing in mm; the voxel volume is their product
    (mm3). ``only`` restricts to some labels (the rest are skipped cheaply). ``prob``
    ((D, H, W) map) adds ``mean_prob`` / ``max_prob`` inside each label;
    ``disagreement`` = ``(a, b)`` two (D, H, W) maps adds the mean of ``|a - b|``
    inside each label (float64). The centroid is the mean voxel index; centroids and
    boxes are in array (z, y, x) order. All sums are ``np.bincount`` over the
    labelled voxels, so the cost is one pass over them whatever the number of labels.
    """
    idx, lab = _labelled_voxels(labels, only)
    if lab.size == 0:
        return {}
    n = int(lab.max()) + 1
    counts = np.bincount(lab, minlength=n)
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    vox_mm3 = float(np.prod(spacing))
    sums = [np.bincount(lab, weights=idx[k].astype(np.float64), minlength=n) for k in range(3)]
    lo = np.full((n, 3), np.iinfo(np.int64).max)
    hi = np.full((n, 3), -1)
    for k in range(3):
        np.minimum.at(lo[:, k], lab, idx[k])
        np.maximum.at(hi[:, k], lab, idx[k])
    largest = _largest_slices(idx, lab, n, labels.shape[0])
    p_mean = p_max = d_mean = None
    if prob is not None:
        p_mean, p_max = _per_label_mean_max(lab, prob[idx].astype(np.float64), counts, n)
    if disagreement is not None:
        a, b = disagreement
        d_mean, _ = _per_label_mean_max(lab, np.abs(a[idx].astype(np.float64) - b[idx]), counts, n)
    out: dict[int, LesionStats] = {}
    for label in np.nonzero(counts)[0]:
        c = np.array([sums[k][label] / counts[label] for k in range(3)])
        out[int(label)] = LesionStats(
            label=int(label),
            volume_vox=int(counts[label]),
            volume_mm3=float(counts[label] * vox_mm3),
            centroid_vox=tuple(float(v) for v in c),  # type: ignore[arg-type]
            centroid_mm=tuple(float(v) for v in c * spacing),  # type: ignore[arg-type]
            bbox=(*(int(v) for v in lo[label]), *(int(v) + 1 for v in hi[label])),  # type: ignore[arg-type]
            largest_slice=int(largest[label]),
            mean_prob=None if p_mean is None else float(p_mean[label]),
            max_prob=None if p_max is None else float(p_max[label]),
            disagreement=None if d_mean is None else float(d_mean[label]),
        )
    return out


def label_stats(
    labels: np.ndarray,
    spacing_mm: Sequence[float],
    *,
    only: Sequence[int] | None = None,
    prob: np.ndarray | None = None,
) -> dict[int, dict[str, Any]]:
    """Volume, centroid, bbox (exclusive) and largest axial slice of each label.

    The review platform's JSON-able rows of ``lesion_stats`` (same arguments):
    ``label``, ``volume_vox``, ``volume_mm3``, ``centroid_vox`` and ``centroid_mm``
    (lists, rounded to 3 decimals), ``bbox`` (list), ``largest_slice``,
    ``longest_axial_diameter_mm`` and ``longest_diameter_mm`` (voxel centres,
    ``ml.lesions.diameters``, rounded to 0.01 mm), and with ``prob`` also ``mean_prob`` /
    ``max_prob``.
    """
    from ml.lesions.diameters import lesion_diameters

    out: dict[int, dict[str, Any]] = {}
    for label, s in lesion_stats(labels, spacing_mm, only=only, prob=prob).items():
        z0, y0, x0, z1, y1, x1 = s.bbox
        sizes = lesion_diameters(labels[z0:z1, y0:y1, x0:x1] == label, spacing_mm)
        row: dict[str, Any] = {
            "label": s.label,
            "volume_vox": s.volume_vox,
            "volume_mm3": s.volume_mm3,
            "centroid_vox": [round(v, 3) for v in s.centroid_vox],
            "centroid_mm": [round(v, 3) for v in s.centroid_mm],
            "bbox": list(s.bbox),
            "largest_slice": s.largest_slice,
            "longest_axial_diameter_mm": round(sizes.longest_axial_diameter_mm, 2),
            "longest_diameter_mm": round(sizes.longest_diameter_mm, 2),
        }
        if prob is not None:
            row["mean_prob"] = s.mean_prob
            row["max_prob"] = s.max_prob
        out[label] = row
    return out


def changed_labels(old: np.ndarray, new: np.ndarray) -> set[int]:
    """Labels whose voxel set differs between two (D, H, W) label maps of one shape
    (the labels on either side of any changed voxel), 0 excluded."""
    diff = old != new
    if not diff.any():
        return set()
    labels = {int(v) for v in np.unique(old[diff])} | {int(v) for v in np.unique(new[diff])}
    return labels - {0}
