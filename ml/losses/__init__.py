"""Segmentation losses, one per module.

The U-Net's region losses (``DiceLoss``, ``VolumeAwareDiceLoss``, built by
name with ``build_loss``) are called ``loss(prob, target, volume_map)`` on
``(B, 1, D, H, W)`` tensors; the plain Dice loss ignores ``volume_map`` so that
trainers can swap them freely. DeepMedic's ``deepmedic_loss(logits, target,
mask, bg_per_fg)`` is a class-balanced cross-entropy on its two class scores.
"""

from __future__ import annotations

from ml.losses.balanced_cross_entropy import deepmedic_loss
from ml.losses.dice import DiceLoss
from ml.losses.volume_aware_dice import VolumeAwareDiceLoss

__all__ = ["DiceLoss", "VolumeAwareDiceLoss", "build_loss", "deepmedic_loss"]


def build_loss(
    name: str, *, lambda_c: float = 2500.0, eps: float = 1.0
) -> DiceLoss | VolumeAwareDiceLoss:
    """Loss by config name: ``dice``, ``vol_dice_br`` (paper's best) or ``vol_dice_cr``."""
    if name == "dice":
        return DiceLoss(eps=eps)
    if name == "vol_dice_br":
        return VolumeAwareDiceLoss(reweight="batch", eps=eps)
    if name == "vol_dice_cr":
        return VolumeAwareDiceLoss(reweight="constant", lambda_c=lambda_c, eps=eps)
    raise ValueError(f"unknown loss {name!r}; choose dice, vol_dice_br or vol_dice_cr")
