"""Intensity augmentation of the MR channel: bias field, gamma, Gaussian noise.

All functions take one channel ``x`` (D, H, W) float32 of the model input (z-scored
inside the head, ``ml.imaging.intensity.model_input``) and a boolean ``head`` mask of
the same shape (voxels that differ from the background value). Outside the head the
value is left untouched, so the background stays one constant (``head_bbox`` and the
DeepMedic padding see what inference sees).

Bias field and gamma act on a non-negative signal: ``s = x - b`` with ``b`` the
channel's minimum inside the head, then the head is re-standardised to its mean and
standard deviation before the transform, so the output has the input's statistics
inside the head, as ``model_input`` would have produced from the altered scan
(TorchIO's RandomBiasField / RandomGamma do the same on unnormalised images; the
re-standardisation is ours because our input is normalised).
"""

from __future__ import annotations

import numpy as np


def head_mask(x: np.ndarray, background: float | None = None) -> np.ndarray:
    """Voxels of ``x`` (D, H, W) that differ from the background (corner) value by > 1e-3."""
    b = float(x.flat[0]) if background is None else background
    return np.abs(x - b) > 1e-3


def _restandardise(y: np.ndarray, x: np.ndarray, head: np.ndarray) -> np.ndarray:
    """``y`` with, inside ``head``, the mean and standard deviation ``x`` has there."""
    out = x.copy()
    if not head.any():
        return out
    yin, xin = y[head], x[head]
    ystd = float(yin.std())
    scale = float(xin.std()) / ystd if ystd > 1e-6 else 1.0
    out[head] = (yin - float(yin.mean())) * scale + float(xin.mean())
    return out


def bias_polynomial(shape: tuple[int, int, int], coefs: np.ndarray) -> np.ndarray:
    """Smooth multiplicative field ``1 + sum_k c_k m_k`` of degree <= 2, float32 (D, H, W).

    ``m_k`` are the monomials z, y, x, z^2, y^2, x^2, zy, zx, yx of coordinates scaled to
    [-1, 1] along each axis (``coefs`` shape (9,)); clipped below at 0.1 so the field
    stays positive. All coefficients 0: the field is exactly 1.
    """
    d, h, w = shape
    z, y, x = (np.linspace(-1.0, 1.0, n, dtype=np.float32) if n > 1 else np.zeros(1, np.float32)
               for n in (d, h, w))  # fmt: skip
    z, y, x = z[:, None, None], y[None, :, None], x[None, None, :]
    c = np.asarray(coefs, dtype=np.float32)
    mono = (z, y, x, z * z, y * y, x * x, z * y, z * x, y * x)
    field = np.ones(shape, dtype=np.float32)
    for ck, m in zip(c, mono, strict=True):
        if ck != 0.0:
            field = field + ck * m
    return np.maximum(field, 0.1)


def apply_bias_field(x: np.ndarray, head: np.ndarray, coefs: np.ndarray) -> np.ndarray:
    """``x`` with the signal inside the head multiplied by ``bias_polynomial(coefs)``."""
    if not np.any(coefs) or not head.any():
        return x.copy()
    b = float(x[head].min())
    y = (x - b) * bias_polynomial(x.shape, coefs) + b
    return _restandardise(y, x, head)


def apply_gamma(x: np.ndarray, head: np.ndarray, gamma: float) -> np.ndarray:
    """``x`` with the head's signal mapped by ``s -> s_max (s / s_max) ** gamma``."""
    if gamma == 1.0 or not head.any():
        return x.copy()
    if gamma <= 0:
        raise ValueError("gamma must be > 0")
    b = float(x[head].min())
    s = np.clip(x - b, 0.0, None)
    s_max = float(s[head].max())
    if s_max <= 1e-6:
        return x.copy()
    y = (s_max * (s / s_max) ** gamma + b).astype(np.float32)
    return _restandardise(y, x, head)


def add_noise(x: np.ndarray, head: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` plus zero-mean Gaussian noise of ``std`` (z-score units) inside the head."""
    out = x.copy()
    if std <= 0 or not head.any():
        return out
    out[head] += rng.standard_normal(int(head.sum()), dtype=np.float32) * np.float32(std)
    return out
