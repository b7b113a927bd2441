"""Volume-aware Dice loss, ``vol-dice`` (Hu et al., "Multimodal Volume-Aware
Detection and Segmentation for Brain Metastases Radiosurgery", MICCAI 2019
workshop, equation (2)).

    L_vol = -(C g.Wp + eps) / (p.p + g.Wg + eps),    C = 1 + g.g / g.Wg

``W`` is diagonal, ``W_ii = sqrt(lambda / volume(i))`` inside a ground-truth
lesion and 0 outside, where ``volume(i)`` is the voxel count of the connected
lesion containing voxel ``i`` in the case's *whole* ground truth
(:func:`ml.lesions.lesion_volume_map`, computed once per case and cropped with
the image, so a lesion cut by a slab keeps its full volume). Sums run over
every voxel of the batch.

``lambda``:

- ``reweight="batch"`` (BR, the paper's best): the largest lesion volume present
  in the batch, so the largest lesion has weight 1 and smaller ones more.
- ``reweight="constant"`` (CR): a fixed ``lambda_c`` in voxels (the paper tried
  500, 1000, 2500, 5000).

``C`` makes a perfect prediction score exactly -1 (also with ``eps``).
Worked example from the paper: lesions of 1800, 450 and 200 voxels get BR
weights 1, 2, 3; finding the two large ones perfectly and missing the small
one gives -0.848 (the paper prints -0.847), against -0.957 for plain Dice.

Tensors: ``prob``, ``target``, ``volume_map`` all ``(B, 1, D, H, W)``;
``volume_map`` holds voxel counts (0 outside lesions). ``target`` voxels with
volume 0 (which cannot happen with a consistent map) get weight 0.

Empty foreground: with no lesion voxel in the batch ``W = 0`` and ``C = 1``
(docs/METHOD.md), so the loss is ``-eps / (p.p + eps)``, the same as Dice's.
"""

from __future__ import annotations

import torch
from torch import nn

from ml.losses._common import check_inputs

_REWEIGHTS = ("batch", "constant")


class VolumeAwareDiceLoss(nn.Module):
    def __init__(
        self, reweight: str = "batch", lambda_c: float | None = None, eps: float = 1.0
    ) -> None:
        super().__init__()
        if reweight not in _REWEIGHTS:
            raise ValueError(f"reweight must be one of {_REWEIGHTS}, got {reweight!r}")
        if reweight == "constant":
            if lambda_c is None or not lambda_c > 0:
                raise ValueError("reweight='constant' needs lambda_c > 0 (voxels)")
        elif lambda_c is not None:
            raise ValueError("lambda_c only applies to reweight='constant'")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.reweight = reweight
        self.lambda_c = None if lambda_c is None else float(lambda_c)
        self.eps = float(eps)

    def weights(self, target: torch.Tensor, volume_map: torch.Tensor) -> torch.Tensor:
        """Diagonal of ``W`` as a tensor shaped like ``volume_map`` (float32)."""
        # Masked arithmetic rather than boolean indexing: no host sync, cheap backward.
        inside = ((volume_map > 0) & (target > 0)).float()
        vol = volume_map.float() * inside
        if self.reweight == "batch":
            lam = vol.amax()
        else:
            lam = torch.tensor(self.lambda_c, dtype=vol.dtype, device=vol.device)
        return torch.sqrt(lam / vol.clamp_min(1.0)) * inside

    def forward(
        self, prob: torch.Tensor, target: torch.Tensor, volume_map: torch.Tensor
    ) -> torch.Tensor:
        check_inputs(prob, target, volume_map)
        p = prob.float().reshape(-1)
        g = target.float().reshape(-1)
        w = self.weights(target, volume_map).reshape(-1)
        gw = g * w
        gwg = (gw * g).sum()
        gg = (g * g).sum()
        # With no foreground gg == gwg == 0 and C = 1 (docs/METHOD.md); the clamp only
        # avoids 0/0: every foreground voxel of a consistent map has a positive weight.
        c = 1.0 + gg / gwg.clamp_min(1e-12)
        return -(c * (gw * p).sum() + self.eps) / ((p * p).sum() + gwg + self.eps)

    def extra_repr(self) -> str:
        return f"reweight={self.reweight!r}, lambda_c={self.lambda_c}, eps={self.eps}"
