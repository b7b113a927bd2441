"""DeepMedic (Kamnitsas et al. 2017) as configured by Hu et al. (MICCAI 2019).

Three parallel pathways see the input at normal resolution and down-sampled by
3 and by 5; each has eight 3x3x3 convolutions (``paper``: 30, 30, 40, 40, 40,
40, 50, 50 feature maps). The low-resolution outputs are up-sampled to the
normal pathway's grid and concatenated with it, then three fully connected
layers (1x1x1 convolutions, 250 feature maps) end in two class scores
(background, tumour). Input ``(B, 2, D, H, W)``; output ``(B, 2, D, H, W)``
logits (softmax over dim 1; channel 1 is tumour).

Choices the paper leaves open, made here (and why):

- Anisotropy: down-sampling is in-plane only, ``(1, f, f)`` average pooling.
  The planning grid has 2 mm slices and 0.6 mm (``paper``) or 1 mm (``lite``)
  pixels, so a factor 3 in-plane makes the x3 pathway roughly isotropic
  (1.8 x 1.8 x 2 mm), while pooling along z as well would leave 6-10 mm slices
  and almost nothing of a small metastasis. Up-sampling is nearest neighbour
  (DeepMedic's repetition), cropped to the input size.
- Padding: every convolution is zero-padded ("same"), unlike the original's
  valid convolutions. The network is then fully convolutional on any
  ``(D, H, W)``: dense inference on a whole study is one forward pass (tiled
  along z, which is exact because z is never pooled), with no bookkeeping to
  align the three pathways' output grids. The padding is part of the input
  the network learns from, so training must show it the same context as
  inference: ``ml.training`` trains on head windows (the whole in-plane head
  box that inference crops to, a few output slices plus ``z_halo`` slices of
  context) with the loss on the output slices only. Small segments with an
  interior-only loss were not enough: the x3 / x5 pathways see 51 / 85 voxels
  in-plane and learned mostly from zero padding (docs/ML.md).
- Normalisation: batch norm + PReLU as in DeepMedic. Instance norm would
  give statistics of whatever region is in the input; batch norm with running
  statistics behaves the same on a training window and on a volume (and head
  windows make the training batch statistics whole-head statistics too).
- No residual connections (the paper does not mention them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _pathway(c_in: int, features: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    c_prev = c_in
    for f in features:
        layers += [
            nn.Conv3d(c_prev, f, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm3d(f),
            nn.PReLU(f),
        ]
        c_prev = f
    return nn.Sequential(*layers)


class DeepMedic(nn.Module):
    def __init__(
        self,
        in_channels: int = 2,
        features: tuple[int, ...] = (30, 30, 40, 40, 40, 40, 50, 50),
        fc_features: int = 250,
        n_fc: int = 3,
        factors: tuple[int, ...] = (3, 5),
        n_classes: int = 2,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.features = tuple(int(f) for f in features)
        self.factors = tuple(int(f) for f in factors)
        if any(f < 2 for f in self.factors):
            raise ValueError(f"down-sampling factors must be >= 2, got {self.factors}")
        self.normal = _pathway(in_channels, self.features)
        self.low = nn.ModuleList(_pathway(in_channels, self.features) for _ in self.factors)
        c = self.features[-1] * (1 + len(self.factors))
        fc: list[nn.Module] = []
        for _ in range(n_fc):
            fc += [
                nn.Conv3d(c, fc_features, kernel_size=1, bias=False),
                nn.BatchNorm3d(fc_features),
                nn.PReLU(fc_features),
            ]
            c = fc_features
        self.fc = nn.Sequential(*fc)
        self.classifier = nn.Conv3d(c, n_classes, kernel_size=1)

    @property
    def z_halo(self) -> int:
        """Slices of context on each side that influence an output voxel."""
        return len(self.features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (B, {self.in_channels}, D, H, W), got {tuple(x.shape)}")
        d, h, w = x.shape[-3:]
        outs = [self.normal(x)]
        for f, path in zip(self.factors, self.low, strict=True):
            # Zero-pad in-plane to a multiple of f so any size pools (and tiny inputs work).
            low = F.pad(x, (0, (-w) % f, 0, (-h) % f))
            low = F.avg_pool3d(low, kernel_size=(1, f, f), stride=(1, f, f))
            y = path(low)
            y = y.repeat_interleave(f, dim=-2).repeat_interleave(f, dim=-1)
            outs.append(y[..., :h, :w])
        return self.classifier(self.fc(torch.cat(outs, dim=1)))
