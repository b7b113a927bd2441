"""Intensity pre-processing of the paper: CT brain window, MR adaptive histogram
equalisation slice by slice, then each volume z-scored inside the head."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.exposure import equalize_adapthist

CT_BRAIN_WINDOW = (40.0, 80.0)  # level, width (HU)
MR_CLIP_PERCENTILES = (0.5, 99.5)
CLAHE_CLIP_LIMIT = 0.01


def head_mask_from_ct(ct_hu: np.ndarray, threshold_hu: float = -400.0) -> np.ndarray:
    """Boolean (D, H, W) head mask: above ``threshold_hu``, largest component, holes filled."""
    arr = ct_hu > threshold_hu
    lab, n = ndimage.label(arr)
    if n > 1:
        sizes = np.bincount(lab.ravel())[1:]
        arr = lab == (int(np.argmax(sizes)) + 1)
    return np.stack([ndimage.binary_fill_holes(s) for s in arr])


def ct_brain_window(
    ct_hu: np.ndarray, level: float = CT_BRAIN_WINDOW[0], width: float = CT_BRAIN_WINDOW[1]
) -> np.ndarray:
    lo, hi = level - width / 2.0, level + width / 2.0
    return np.clip(ct_hu, lo, hi).astype(np.float32)


def mr_equalise(mr: np.ndarray, head: np.ndarray) -> np.ndarray:
    """Adaptive histogram equalisation (CLAHE) of each axial slice, in [0, 1].

    Intensities are first scaled by robust percentiles inside the head so that one
    bright vessel does not set the range; outside the head is zero.
    """
    inside = mr[head] if head.any() else mr.ravel()
    lo, hi = np.percentile(inside, MR_CLIP_PERCENTILES) if inside.size else (0.0, 1.0)
    scaled = np.clip((mr - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    scaled[~head] = 0.0
    out = np.zeros_like(scaled, dtype=np.float32)
    h, w = mr.shape[1:]
    kernel = max(8, min(h, w) // 8)
    for z in range(mr.shape[0]):
        if not head[z].any():
            continue
        out[z] = equalize_adapthist(scaled[z], kernel_size=kernel, clip_limit=CLAHE_CLIP_LIMIT)
    out[~head] = 0.0
    return out


def zscore(vol: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance over ``mask``; applied to the whole volume."""
    values = vol[mask] if mask.any() else vol.ravel()
    mean = float(values.mean())
    std = float(values.std())
    return ((vol - mean) / (std if std > 1e-6 else 1.0)).astype(np.float32)


def model_input(mr: np.ndarray, ct_hu: np.ndarray, head: np.ndarray) -> np.ndarray:
    """(2, D, H, W) float32: channel 0 MR, channel 1 CT, each z-scored inside the head."""
    return np.stack(
        [zscore(mr_equalise(mr, head), head), zscore(ct_brain_window(ct_hu), head)]
    ).astype(np.float32)
