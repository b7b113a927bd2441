"""Intensity pre-processing of the paper: CT brain window, MR adaptive histogram
equalisation slice by slice, then each volume z-scored inside the head."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.exposure import equalize_adapthist

CT_BRAIN_WINDOW = (40.0, 80.0)  # level, width (HU)
MR_CLIP_PERCENTILES = (0.5, 99.5)
CLAHE_CLIP_LIMIT = 0.01


def head_mask_from_ct(
    ct_hu: np.ndarray, threshold_hu: float = -400.0, *, spacing_mm: tuple[float, ...] | None = None
) -> np.ndarray:
    """Boolean (D, H, W) head mask: above ``threshold_hu``, largest component, holes filled.

    With ``spacing_mm`` the mask is computed on in-plane bins of about 2 mm (labelling
    and hole filling of a 512x512 grid cost seconds) and expanded back.
    """
    f = 1
    if spacing_mm is not None:
        f = max(1, int(round(2.0 / float(min(spacing_mm[1:])))))
    d, h, w = ct_hu.shape
    if f > 1:
        hp, wp = -(-h // f) * f, -(-w // f) * f
        padded = np.full((d, hp, wp), -1024.0, dtype=np.float32)
        padded[:, :h, :w] = ct_hu
        small = padded.reshape(d, hp // f, f, wp // f, f).mean(axis=(2, 4))
    else:
        small = ct_hu
    arr = small > threshold_hu
    lab, n = ndimage.label(arr)
    if n > 1:
        sizes = np.bincount(lab.ravel())[1:]
        arr = lab == (int(np.argmax(sizes)) + 1)
    arr = np.stack([ndimage.binary_fill_holes(s) for s in arr])
    if f > 1:
        arr = arr[:, np.arange(h) // f][:, :, np.arange(w) // f]
    return arr


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
    # Percentiles of a regular subsample: a full sort of ~10^7 values costs seconds.
    inside = inside[:: max(1, inside.size // 1_000_000)]
    lo, hi = np.percentile(inside, MR_CLIP_PERCENTILES) if inside.size else (0.0, 1.0)
    scaled = np.clip((mr - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    scaled[~head] = 0.0
    out = np.zeros_like(scaled, dtype=np.float32)
    h, w = mr.shape[1:]
    kernel = max(8, min(h, w) // 8)
    # Equalise only the head's bounding box (plus a margin): the same result inside the
    # head, at a fraction of the cost on a 512x512 grid.
    ys, xs = np.nonzero(head.any(axis=0))
    if len(ys) == 0:
        return out
    m = kernel // 2
    y0, y1 = max(0, ys.min() - m), min(h, ys.max() + 1 + m)
    x0, x1 = max(0, xs.min() - m), min(w, xs.max() + 1 + m)
    for z in range(mr.shape[0]):
        if not head[z].any():
            continue
        out[z, y0:y1, x0:x1] = equalize_adapthist(
            scaled[z, y0:y1, x0:x1], kernel_size=kernel, clip_limit=CLAHE_CLIP_LIMIT
        )
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
