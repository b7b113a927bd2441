"""What differs between training the U-Net and DeepMedic: plan, batch and loss.

The trainer loop (``ml.training.trainer.train_network``) is the same for both
networks; it asks an ``ArchStrategy`` for

- ``plan(cases, rng)``: one epoch as batches of ``(case index, wants tumour)``;
- ``batch(net, cases, items, rng, device)``: the tensors of one batch;
- ``loss(net, batch)``: the forward pass and the scalar loss.

``UNetStrategy`` samples slabs of ``slab_depth`` slices at full in-plane size
and applies a (volume-aware) Dice loss to sigmoid probabilities;
``DeepMedicStrategy`` samples head windows (or segments) and applies the
class-balanced cross-entropy of ``ml.losses.deepmedic_loss`` (docs/METHOD.md,
docs/ML.md). Both draw every random number from the trainer's ``rng`` in a
fixed order, so a seed gives the same batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn

from ml.augment import AugmentConfig, augment_sample
from ml.losses import DiceLoss, VolumeAwareDiceLoss, build_loss, deepmedic_loss
from ml.training.config import DeepMedicTrainConfig, EnsembleTrainConfig, UNetTrainConfig
from ml.training.data import Case, sample_head_window, sample_segment, sample_slab

# One epoch: batches of (index into the training cases, wants a tumour voxel).
Plan = list[list[tuple[int, bool]]]
# (inputs, labels, weights): (B, 2, D, H, W) float32 inputs; the rest per strategy.
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class ArchStrategy(Protocol):
    """How one architecture is sampled and scored; the trainer loop calls these."""

    arch: str
    seed_offset: int  # added to the seed of the network's initial weights and its sampler

    @property
    def cfg(self) -> UNetTrainConfig | DeepMedicTrainConfig: ...

    @property
    def init_prior(self) -> float | None: ...

    def plan(self, cases: Sequence[Case], rng: np.random.Generator) -> Plan: ...

    def batch(
        self,
        net: nn.Module,
        cases: Sequence[Case],
        items: Sequence[tuple[int, bool]],
        rng: np.random.Generator,
        device: torch.device | str,
    ) -> Batch: ...

    def loss(self, net: nn.Module, batch: Batch) -> torch.Tensor: ...


def pad_stack(arrays: Sequence[np.ndarray], n_axes: int = 2) -> np.ndarray:
    """Stack arrays whose last ``n_axes`` axes may differ (head crops), zero padding.

    Returns ``(len(arrays), *lead, *max_sizes)`` in the first array's dtype.
    """
    lead = arrays[0].shape[: arrays[0].ndim - n_axes]
    size = tuple(max(a.shape[k] for a in arrays) for k in range(-n_axes, 0))
    out = np.zeros((len(arrays), *lead, *size), dtype=arrays[0].dtype)
    for i, a in enumerate(arrays):
        out[(i, ..., *(slice(0, n) for n in a.shape[-n_axes:]))] = a
    return out


def _mixed_plan(
    cases: Sequence[Case],
    n: int,
    tumour_share: float,
    rounding: Callable[[float], int],
    batch_size: int,
    rng: np.random.Generator,
) -> Plan:
    """``n`` items, ``rounding(tumour_share * n)`` of them on tumour (none when no
    case has tumour), drawn with replacement, shuffled and cut into batches."""
    tumour_cases = [i for i, c in enumerate(cases) if c.has_tumour]
    n_tumour = rounding(tumour_share * n) if tumour_cases else 0
    plan = [(int(rng.choice(tumour_cases)), True) for _ in range(n_tumour)]
    plan += [(int(rng.integers(len(cases))), False) for _ in range(n - n_tumour)]
    order = rng.permutation(n)
    plan = [plan[i] for i in order]
    return [plan[i : i + batch_size] for i in range(0, n, batch_size)]


def unet_plan(cases: Sequence[Case], cfg: UNetTrainConfig, rng: np.random.Generator) -> Plan:
    """An epoch of ``steps_per_epoch`` (default: one per case) batches of slabs.

    At least ``tumour_fraction`` of the slabs (rounded up) contain tumour, as in
    the paper's "at least 70% of the samples" (docs/METHOD.md).
    """
    steps = cfg.steps_per_epoch or len(cases)
    return _mixed_plan(
        cases, steps * cfg.batch_size, cfg.tumour_fraction, math.ceil, cfg.batch_size, rng
    )


def deepmedic_plan(
    cases: Sequence[Case], cfg: DeepMedicTrainConfig, rng: np.random.Generator
) -> Plan:
    """An epoch of ``segments_per_epoch`` windows, ``fg_fraction`` (rounded) on tumour."""
    return _mixed_plan(cases, cfg.segments_per_epoch, cfg.fg_fraction, round, cfg.batch_size, rng)


def unet_batch(
    cases: Sequence[Case],
    items: Sequence[tuple[int, bool]],
    cfg: UNetTrainConfig,
    rng: np.random.Generator,
    device: torch.device | str,
    augment: AugmentConfig | None = None,
) -> Batch:
    """(x, g, v): slabs ``(B, 2, slab_depth, H, W)``, labels and lesion volumes
    ``(B, 1, slab_depth, H, W)`` float32 (volumes in voxels), randomly flipped
    left-right, then augmented (``ml.augment``) when ``augment.enabled``; head crops
    of different sizes are zero-padded. The volume map follows spatial transforms by
    nearest neighbour and keeps each lesion's volume on the unaugmented study."""
    imgs, gts, vms = [], [], []
    for ci, want in items:
        img, gt, vm = sample_slab(cases[ci], cfg.slab_depth, want_tumour=want, rng=rng)
        if cfg.flip and rng.random() < 0.5:
            img, gt, vm = img[..., ::-1], gt[..., ::-1], vm[..., ::-1]
        if augment is not None and augment.enabled:
            img, (gt, vm) = augment_sample(img, (gt, vm), cases[ci].spacing_mm, augment, rng)
        imgs.append(img)
        gts.append(gt[None])
        vms.append(vm[None])
    x = torch.from_numpy(pad_stack(imgs)).to(device)
    g = torch.from_numpy(pad_stack(gts).astype(np.float32)).to(device)
    v = torch.from_numpy(pad_stack(vms).astype(np.float32)).to(device)
    return x, g, v


def _segment_with_mask(
    case: Case, cfg: DeepMedicTrainConfig, fg: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ``segment_dhw`` segment and its interior inside ``loss_margin_dhw``."""
    img, gt = sample_segment(case, cfg.segment_dhw, foreground=fg, rng=rng)
    mask = np.zeros(gt.shape, dtype=bool)
    mask[tuple(slice(m, n - m) for m, n in zip(cfg.loss_margin_dhw, gt.shape, strict=True))] = True
    return img, gt, mask


def deepmedic_batch(
    cases: Sequence[Case],
    items: Sequence[tuple[int, bool]],
    cfg: DeepMedicTrainConfig,
    rng: np.random.Generator,
    device: torch.device | str,
    halo: int = 8,
    augment: AugmentConfig | None = None,
) -> Batch:
    """(x, g, mask): inputs ``(B, 2, D, H, W)`` float32, labels ``(B, D, H, W)``
    int64 and the voxels that enter the loss ``(B, D, H, W)`` bool.

    Head windows of different sizes are zero-padded to a common shape; the
    padding is outside ``mask``. For segments, ``mask`` is the interior inside
    ``loss_margin_dhw``. ``halo``: slices of context each side of a head window.
    With ``augment.enabled`` each window is augmented (``ml.augment``); ``gt`` and
    ``mask`` follow spatial transforms by nearest neighbour.
    """
    imgs, gts, masks = [], [], []
    for ci, fg in items:
        if cfg.sampler == "head":
            img, gt, mask = sample_head_window(
                cases[ci], cfg.out_depth, halo, want_tumour=fg, rng=rng
            )
        else:
            img, gt, mask = _segment_with_mask(cases[ci], cfg, fg, rng)
        if cfg.flip and rng.random() < 0.5:
            img, gt, mask = img[..., ::-1], gt[..., ::-1], mask[..., ::-1]
        if augment is not None and augment.enabled:
            img, (gt, mask) = augment_sample(img, (gt, mask), cases[ci].spacing_mm, augment, rng)
        imgs.append(np.ascontiguousarray(img))
        gts.append(np.ascontiguousarray(gt))
        masks.append(np.ascontiguousarray(mask))
    x = torch.from_numpy(pad_stack(imgs, 3)).to(device)
    g = torch.from_numpy(pad_stack(gts, 3).astype(np.int64)).to(device)
    m = torch.from_numpy(pad_stack(masks, 3)).to(device)
    return x, g, m


@dataclass(frozen=True)
class UNetStrategy:
    """Slabs, sigmoid probabilities and the configured Dice-family loss."""

    cfg: UNetTrainConfig
    loss_fn: DiceLoss | VolumeAwareDiceLoss  # build_loss(cfg.loss, ...)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    arch: str = field(default="unet", init=False)
    seed_offset: int = field(default=1, init=False)

    @property
    def init_prior(self) -> float | None:
        return self.cfg.init_prior

    def plan(self, cases: Sequence[Case], rng: np.random.Generator) -> Plan:
        return unet_plan(cases, self.cfg, rng)

    def batch(
        self,
        net: nn.Module,
        cases: Sequence[Case],
        items: Sequence[tuple[int, bool]],
        rng: np.random.Generator,
        device: torch.device | str,
    ) -> Batch:
        return unet_batch(cases, items, self.cfg, rng, device, self.augment)

    def loss(self, net: nn.Module, batch: Batch) -> torch.Tensor:
        x, g, v = batch
        prob = torch.sigmoid(net(x).float())
        return self.loss_fn(prob, g, v)


@dataclass(frozen=True)
class DeepMedicStrategy:
    """Head windows (or segments) and the class-balanced cross-entropy."""

    cfg: DeepMedicTrainConfig
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    arch: str = field(default="deepmedic", init=False)
    seed_offset: int = field(default=2, init=False)

    @property
    def init_prior(self) -> float | None:
        return None

    def plan(self, cases: Sequence[Case], rng: np.random.Generator) -> Plan:
        return deepmedic_plan(cases, self.cfg, rng)

    def batch(
        self,
        net: nn.Module,
        cases: Sequence[Case],
        items: Sequence[tuple[int, bool]],
        rng: np.random.Generator,
        device: torch.device | str,
    ) -> Batch:
        return deepmedic_batch(
            cases, items, self.cfg, rng, device, halo=int(net.z_halo), augment=self.augment
        )

    def loss(self, net: nn.Module, batch: Batch) -> torch.Tensor:
        x, g, m = batch
        # Class balance applies to head windows; segments keep the plain mean.
        bg_per_fg = self.cfg.bg_per_fg if self.cfg.sampler == "head" else None
        return deepmedic_loss(net(x).float(), g, m, bg_per_fg)


STRATEGY_ARCHS = ("unet", "deepmedic")


def strategy_for(arch: str, config: EnsembleTrainConfig) -> ArchStrategy:
    """The strategy for ``arch`` ("unet" or "deepmedic") with its section of ``config``.

    Raises ``ValueError`` for any other architecture name (and, through
    ``build_loss``, for an unknown U-Net loss: call ``config.validate()`` first
    for the friendlier message).
    """
    if arch == "unet":
        cfg = config.unet
        loss_fn = build_loss(cfg.loss, lambda_c=cfg.lambda_c, eps=cfg.eps)
        return UNetStrategy(cfg, loss_fn, config.augment)
    if arch == "deepmedic":
        return DeepMedicStrategy(config.deepmedic, config.augment)
    raise ValueError(f"unknown architecture {arch!r}")
