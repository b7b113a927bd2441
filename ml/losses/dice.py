"""Soft Dice loss (Milletari et al. 2016; equation (1) of Hu et al., MICCAI 2019).

    L_dice = -(2 g.p + eps) / (p.p + g.g + eps)

``p`` are predicted probabilities and ``g`` the binary ground truth, both
flattened over every voxel of the batch (one Dice for the whole batch, as in
the paper, not a mean of per-sample Dice values). Range [-1, 0]; a perfect
prediction scores -1.

Tensors: ``prob``, ``target`` of shape ``(B, 1, D, H, W)``; ``volume_map`` is
accepted and ignored so the call matches :class:`VolumeAwareDiceLoss`.

Empty masks: with no foreground in ``target`` the loss is ``-eps / (p.p + eps)``,
which is -1 for an all-zero prediction and pushes probabilities towards 0
otherwise; it never divides by zero.
"""

from __future__ import annotations

import torch
from torch import nn

from ml.losses._common import check_inputs


class DiceLoss(nn.Module):
    def __init__(self, eps: float = 1.0) -> None:
        super().__init__()
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.eps = float(eps)

    def forward(
        self, prob: torch.Tensor, target: torch.Tensor, volume_map: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_inputs(prob, target, volume_map)
        p = prob.float().reshape(-1)
        g = target.float().reshape(-1)
        return -(2.0 * (g * p).sum() + self.eps) / ((p * p).sum() + (g * g).sum() + self.eps)
