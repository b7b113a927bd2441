"""``AugmentConfig``: which training augmentations run, how strong, how often.

A typed dataclass (serialised with the training config, docs/ML.md "Augmentation").
Every transform family has a probability ``*_p`` (per sample) and a strength; a
strength of 0 makes the transform the identity. ``enabled=False`` (the default, the
paper's recipe) draws no random numbers at all, so runs without augmentation keep
their exact batches.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AugmentConfig:
    enabled: bool = False
    # Intensity (MR channel only: the CT channel is a fixed HU window, a scanner's bias
    # field or gamma does not apply to it).
    bias_p: float = 0.3
    bias_max_coef: float = 0.25  # |c_k| of the quadratic bias polynomial (fraction of signal)
    gamma_p: float = 0.3
    gamma_max_log: float = 0.3  # gamma = exp(U(-m, m)): 0.74..1.35
    noise_p: float = 0.3
    noise_max_std: float = 0.15  # z-score units (the input is z-scored inside the head)
    noise_ct: bool = True  # CT gets Gaussian noise too (its quantum noise varies by scanner)
    # Resolution (MR channel: it is the one resampled from another grid).
    blur_p: float = 0.2
    blur_max_sigma_mm: float = 1.5  # in-plane Gaussian
    zres_p: float = 0.2
    zres_max_factor: float = 2.5  # slices thicker by up to this factor (down-, then up-sampled)
    # Spatial (image and labels together; labels nearest-neighbour).
    rotate_p: float = 0.3
    rotate_max_deg: tuple[float, float, float] = (10.0, 3.0, 3.0)  # about z, y, x axes
    scale_p: float = 0.3
    scale_max: float = 0.1  # isotropic factor in [1 - m, 1 + m] (in mm, so spacing-aware)

    def validate(self) -> None:
        probs = ("bias_p", "gamma_p", "noise_p", "blur_p", "zres_p", "rotate_p", "scale_p")
        for name in probs:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augment.{name} must be in [0, 1]")
        strengths = (
            "bias_max_coef", "gamma_max_log", "noise_max_std", "blur_max_sigma_mm", "scale_max"
        )  # fmt: skip
        for name in strengths:
            if getattr(self, name) < 0:
                raise ValueError(f"augment.{name} must be >= 0")
        if self.zres_max_factor < 1.0:
            raise ValueError("augment.zres_max_factor must be >= 1")
        if self.scale_max >= 0.5:
            raise ValueError("augment.scale_max must be < 0.5")
        if len(self.rotate_max_deg) != 3 or any(not 0 <= a <= 45 for a in self.rotate_max_deg):
            raise ValueError("augment.rotate_max_deg must be three angles in [0, 45] degrees")
