"""``augment_sample``: one training sample through every enabled transform family.

Order (fixed, so a seed always gives the same sample): spatial (rotation, scaling;
image and labels together), resolution (in-plane blur, thicker slices; MR), intensity
(bias field, gamma; MR), noise (MR, and CT with ``noise_ct``). Each family is applied
with its probability; its parameters are drawn only when it is applied. Every random
number comes from the ``rng`` passed in (the trainer's sampler generator).

Channels: ``image`` is the model input (C, D, H, W) float32 with the MR in channel 0
and the CT (brain window, z-scored) in channel 1 (``ml.imaging.intensity.model_input``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ml.augment.config import AugmentConfig
from ml.augment.intensity import add_noise, apply_bias_field, apply_gamma, head_mask
from ml.augment.resolution import blur_in_plane, thicken_slices
from ml.augment.spatial import warp

MR, CT = 0, 1


def _spatial(
    image: np.ndarray,
    labels: list[np.ndarray],
    spacing_mm: tuple[float, float, float],
    cfg: AugmentConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[np.ndarray]]:
    angles = (0.0, 0.0, 0.0)
    scale = 1.0
    if rng.random() < cfg.rotate_p:
        angles = tuple(float(rng.uniform(-m, m)) for m in cfg.rotate_max_deg)
    if rng.random() < cfg.scale_p:
        scale = float(rng.uniform(1.0 - cfg.scale_max, 1.0 + cfg.scale_max))
    if not any(angles) and scale == 1.0:
        return image, labels
    image = np.stack([warp(ch, angles, scale, spacing_mm) for ch in image])
    return image, [warp(lab, angles, scale, spacing_mm, label=True) for lab in labels]


def _mr_appearance(
    mr: np.ndarray,
    spacing_mm: tuple[float, float, float],
    cfg: AugmentConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """Resolution and intensity of the MR channel (D, H, W)."""
    head = head_mask(mr)
    background = mr.flat[0]
    if rng.random() < cfg.blur_p:
        mr = blur_in_plane(mr, float(rng.uniform(0.0, cfg.blur_max_sigma_mm)), spacing_mm)
    if rng.random() < cfg.zres_p:
        mr = thicken_slices(mr, float(rng.uniform(1.0, cfg.zres_max_factor)))
    mr = np.where(head, mr, background).astype(np.float32)  # blur must not leak outside
    if rng.random() < cfg.bias_p:
        mr = apply_bias_field(mr, head, rng.uniform(-cfg.bias_max_coef, cfg.bias_max_coef, 9))
    if rng.random() < cfg.gamma_p:
        mr = apply_gamma(
            mr, head, float(np.exp(rng.uniform(-cfg.gamma_max_log, cfg.gamma_max_log)))
        )
    if rng.random() < cfg.noise_p:
        mr = add_noise(mr, head, float(rng.uniform(0.0, cfg.noise_max_std)), rng)
    return mr


def augment_sample(
    image: np.ndarray,
    labels: Sequence[np.ndarray],
    spacing_mm: tuple[float, float, float],
    cfg: AugmentConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """(image, labels) augmented: image (C, D, H, W) float32, labels (D, H, W) each.

    Labels (ground truth, lesion volume map, loss mask, ...) follow the spatial
    transforms by nearest neighbour and keep their dtype and values; intensity and
    resolution transforms leave them alone. With ``cfg.enabled`` False the inputs are
    returned unchanged and ``rng`` is not advanced. Shapes never change.
    """
    labels = list(labels)
    if not cfg.enabled:
        return image, labels
    image, labels = _spatial(np.asarray(image, dtype=np.float32), labels, spacing_mm, cfg, rng)
    image = image.copy()
    image[MR] = _mr_appearance(image[MR], spacing_mm, cfg, rng)
    if image.shape[0] > CT and cfg.noise_ct and rng.random() < cfg.noise_p:
        ct = image[CT]
        image[CT] = add_noise(ct, head_mask(ct), float(rng.uniform(0.0, cfg.noise_max_std)), rng)
    return image, labels
