"""Label-mask arithmetic in NumPy (no torch): per-label statistics and diffs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def label_stats(
    labels: np.ndarray,
    spacing_mm: Sequence[float],
    *,
    only: Sequence[int] | None = None,
    prob: np.ndarray | None = None,
) -> dict[int, dict[str, Any]]:
    """Volume, centroid, bbox (exclusive) and largest axial slice of each label.

    ``only`` restricts to some labels (the rest are skipped cheaply); ``prob`` adds
    ``mean_prob``/``max_prob`` of that map inside each label.
    """
    idx = np.nonzero(labels)
    lab = labels[idx].astype(np.int64)
    if lab.size == 0:
        return {}
    if only is not None:
        keep = np.isin(lab, np.asarray(list(only), dtype=np.int64))
        idx = tuple(i[keep] for i in idx)
        lab = lab[keep]
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
    depth = labels.shape[0]
    per_slice = np.bincount(lab * depth + idx[0], minlength=n * depth).reshape(n, depth)
    largest = per_slice.argmax(axis=1)
    if prob is not None:
        p = prob[idx].astype(np.float64)
        psum = np.bincount(lab, weights=p, minlength=n)
        pmax = np.zeros(n)
        np.maximum.at(pmax, lab, p)
    out: dict[int, dict[str, Any]] = {}
    for label in np.nonzero(counts)[0]:
        c = np.array([sums[k][label] / counts[label] for k in range(3)])
        row: dict[str, Any] = {
            "label": int(label),
            "volume_vox": int(counts[label]),
            "volume_mm3": float(counts[label] * vox_mm3),
            "centroid_vox": [round(float(v), 3) for v in c],
            "centroid_mm": [round(float(v), 3) for v in c * spacing],
            "bbox": [*(int(v) for v in lo[label]), *(int(v) + 1 for v in hi[label])],
            "largest_slice": int(largest[label]),
        }
        if prob is not None:
            row["mean_prob"] = float(psum[label] / counts[label])
            row["max_prob"] = float(pmax[label])
        out[int(label)] = row
    return out


def changed_labels(old: np.ndarray, new: np.ndarray) -> set[int]:
    """Labels whose voxel set differs between two masks (either side of any change)."""
    diff = old != new
    if not diff.any():
        return set()
    labels = {int(v) for v in np.unique(old[diff])} | {int(v) for v in np.unique(new[diff])}
    return labels - {0}
