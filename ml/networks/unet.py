"""3D U-Net of Hu et al. (MICCAI 2019), after Cicek et al. (2016) with one extra level.

Five resolution levels (``paper`` preset: 32, 64, 128, 256, 512 feature maps),
two 3x3x3 convolutions per level, max-pooling 2x2x1 (in-plane only: never along
the slice axis, whose 2 mm spacing is already 3x coarser than in-plane), and
transposed convolutions 2x2x1 on the way up. Input ``(B, 2, D, H, W)`` (MR, CT);
output ``(B, 1, D, H, W)`` tumour logits (apply a sigmoid for probabilities).

Choices the paper leaves open, made here:

- Normalisation: instance norm (affine) + LeakyReLU(0.01) after every conv. The
  paper trains with batch size 1, where batch statistics are those of one slab;
  instance norm behaves the same in training and evaluation, and inference
  always runs on slabs of the training size (``ml.inference``), so the
  statistics match.
- "same" padding, so output size equals input size. ``H`` and ``W`` that are not
  multiples of 16 are zero-padded inside ``forward`` and cropped back; no layer
  changes ``D``. Instance norm needs more than one voxel per channel at the
  deepest level, so ``D >= 2`` unless ``H`` or ``W`` exceeds 16 (inference pads
  studies thinner than a slab to the slab depth anyway).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, kernel_size=3, padding=1),
        nn.InstanceNorm3d(c_out, affine=True),
        nn.LeakyReLU(0.01, inplace=True),
        nn.Conv3d(c_out, c_out, kernel_size=3, padding=1),
        nn.InstanceNorm3d(c_out, affine=True),
        nn.LeakyReLU(0.01, inplace=True),
    )


class UNet3D(nn.Module):
    def __init__(self, in_channels: int = 2, features: tuple[int, ...] = (32, 64, 128, 256, 512)):
        super().__init__()
        if len(features) < 2:
            raise ValueError("UNet3D needs at least two levels")
        self.in_channels = in_channels
        self.features = tuple(int(f) for f in features)
        self.encoders = nn.ModuleList()
        c_prev = in_channels
        for f in self.features:
            self.encoders.append(_conv_block(c_prev, f))
            c_prev = f
        self.pool = nn.MaxPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2))
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for f_low, f_high in zip(self.features[:0:-1], self.features[-2::-1], strict=True):
            self.ups.append(
                nn.ConvTranspose3d(f_low, f_high, kernel_size=(1, 2, 2), stride=(1, 2, 2))
            )
            self.decoders.append(_conv_block(2 * f_high, f_high))
        self.head = nn.Conv3d(self.features[0], 1, kernel_size=1)

    @property
    def in_plane_multiple(self) -> int:
        return 2 ** (len(self.features) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (B, {self.in_channels}, D, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        m = self.in_plane_multiple
        pad_h, pad_w = (-h) % m, (-w) % m
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        skips = []
        for i, enc in enumerate(self.encoders):
            x = enc(x)
            if i < len(self.encoders) - 1:
                skips.append(x)
                x = self.pool(x)
        for up, dec, skip in zip(self.ups, self.decoders, reversed(skips), strict=True):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x)[..., :h, :w]
