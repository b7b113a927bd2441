"""Resolution augmentation: in-plane Gaussian blur and slice thickening along z.

``x`` is one channel (D, H, W) float32; ``spacing_mm`` is ``(z, y, x)`` in mm.

- ``blur_in_plane``: Gaussian of ``sigma_mm`` along y and x (sigma in voxels =
  sigma_mm / spacing), reflecting at the borders; sigma 0 is the identity.
- ``thicken_slices``: a scan with slices ``factor`` times thicker, resampled back
  to the grid (what a 2D MR with 4-5 mm slices looks like after registration to the
  planning CT): linear down-sampling to ``round(D / factor)`` slices
  (``scipy.ndimage.zoom``, ``order=1``, ``grid_mode=True`` so the slab's extent is
  kept), then linear up-sampling back to ``D``. Factor 1 is the identity.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def blur_in_plane(
    x: np.ndarray, sigma_mm: float, spacing_mm: tuple[float, float, float]
) -> np.ndarray:
    if sigma_mm <= 0:
        return x.copy()
    sigma = (0.0, sigma_mm / spacing_mm[1], sigma_mm / spacing_mm[2])
    return ndimage.gaussian_filter(x, sigma=sigma, mode="reflect").astype(np.float32)


def thicken_slices(x: np.ndarray, factor: float) -> np.ndarray:
    d = x.shape[0]
    n_low = max(1, int(round(d / factor)))
    if factor <= 1.0 or n_low >= d:
        return x.copy()
    low = ndimage.zoom(x, (n_low / d, 1.0, 1.0), order=1, mode="nearest", grid_mode=True)
    back = ndimage.zoom(low, (d / low.shape[0], 1.0, 1.0), order=1, mode="nearest", grid_mode=True)
    return back.astype(np.float32)
