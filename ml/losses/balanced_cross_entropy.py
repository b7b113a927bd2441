"""DeepMedic's loss: voxel-wise cross-entropy over a mask, class-balanced.

DeepMedic (Kamnitsas et al. 2017; Hu et al., MICCAI 2019, docs/METHOD.md)
minimises the cross-entropy of its two class scores. Instead of drawing a
50/50 sample of tumour and background voxels, LesionLoop keeps every voxel of
the mask and weights the two classes (``DeepMedicTrainConfig.bg_per_fg``,
docs/ML.md):

    L = (mean_{i in T} CE_i + r * mean_{i in B} CE_i) / (1 + r)

``CE_i = -log softmax(logits)_i[target_i]``, ``T`` the tumour voxels and ``B``
the background voxels inside ``mask``, ``r = bg_per_fg`` (background weighs
``r`` times as much as tumour in total; ``r = 1`` is DeepMedic's balanced
sample). With ``bg_per_fg=None`` the loss is the plain mean of ``CE_i`` over
the mask (the study's own class prior).

Tensors: ``logits`` float ``(B, 2, D, H, W)`` (background, tumour scores);
``target`` int64 ``(B, D, H, W)`` in {0, 1}; ``mask`` bool ``(B, D, H, W)``,
the voxels that enter the loss (padding and context slices are outside it).
Returns a scalar tensor.

Empty masks: when the mask holds no tumour voxel, or no background voxel, the
balanced form is undefined and the plain mean over the mask is used; a mask
with no voxel at all gives 0 (with zero gradient), never a division by zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def deepmedic_loss(
    logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, bg_per_fg: float | None
) -> torch.Tensor:
    """Cross-entropy over the voxels in ``mask``, class-balanced by ``bg_per_fg``.

    ``(mean CE over tumour + bg_per_fg * mean CE over background) / (1 +
    bg_per_fg)``; the plain mean with ``bg_per_fg=None`` or without tumour (see
    the module docstring for shapes and empty masks).
    """
    ce = F.cross_entropy(logits, target, reduction="none")
    maskf = mask.to(ce.dtype)
    fg = maskf * (target == 1).to(ce.dtype)
    bg = maskf - fg
    n_fg, n_bg = fg.sum(), bg.sum()
    if bg_per_fg is None or float(n_fg) == 0 or float(n_bg) == 0:
        return (ce * maskf).sum() / maskf.sum().clamp_min(1)
    mean_fg = (ce * fg).sum() / n_fg
    mean_bg = (ce * bg).sum() / n_bg
    return (mean_fg + bg_per_fg * mean_bg) / (1 + bg_per_fg)
