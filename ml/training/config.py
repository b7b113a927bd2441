"""Typed training configs, serialised to and from JSON (no exec'd configuration).

Defaults are the paper's (docs/METHOD.md section 2) where it gives a value; the
rest are ours and documented in docs/ML.md.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ml.augment.config import AugmentConfig

_LOSSES = ("dice", "vol_dice_br", "vol_dice_cr")


@dataclass
class UNetTrainConfig:
    epochs: int = 300
    lr: float = 1e-3
    batch_size: int = 1
    slab_depth: int = 8
    steps_per_epoch: int | None = None  # None: one slab per training case
    tumour_fraction: float = 0.7  # at least this share of an epoch's slabs contain tumour
    loss: str = "vol_dice_br"  # dice | vol_dice_br | vol_dice_cr
    lambda_c: float = 2500.0  # voxels, for vol_dice_cr
    eps: float = 1.0
    flip: bool = True  # random left-right flips
    max_minutes: float | None = None
    val_stride: int = 4  # slab stride used for validation and stored for inference
    # Initial tumour probability of the output layer (its bias = logit(prior)), as
    # in RetinaNet's prior initialisation; None keeps PyTorch's default (p ~ 0.5
    # everywhere at the start). Not applied on warm starts or resumes.
    init_prior: float | None = None

    def validate(self) -> None:
        if self.loss not in _LOSSES:
            raise ValueError(f"loss must be one of {_LOSSES}, got {self.loss!r}")
        if not 0.0 <= self.tumour_fraction <= 1.0:
            raise ValueError("tumour_fraction must be in [0, 1]")
        if self.epochs < 1 or self.batch_size < 1 or self.slab_depth < 1:
            raise ValueError("epochs, batch_size and slab_depth must be >= 1")
        if not 1 <= self.val_stride <= self.slab_depth:
            raise ValueError("val_stride must be in 1..slab_depth")
        if self.init_prior is not None and not 0.0 < self.init_prior < 1.0:
            raise ValueError("init_prior must be in (0, 1) or None")


_DM_SAMPLERS = ("head", "segment")
_SECTIONS = ("unet", "deepmedic", "augment")


@dataclass
class DeepMedicTrainConfig:
    """DeepMedic training.

    ``sampler="head"`` (default) trains on *head windows*: the case's whole
    in-plane head box (the crop inference uses, ``head_bbox``) and
    ``out_depth`` output slices plus ``net.z_halo`` slices of context on each
    side, clamped inside the volume exactly as ``predict_deepmedic`` clamps its
    tiles. The cross-entropy is computed on the ``out_depth`` output slices
    only, so every voxel in the loss sees the same input, zero padding included,
    as it does at whole-study inference. This matters because the network uses
    "same" padding and its x3 / x5 pathways see 51 / 85 voxels in-plane: on
    small segments (``sampler="segment"``) they learned mostly from zero
    padding and the network failed on whole studies (docs/ML.md).

    ``fg_fraction`` of the windows have a tumour voxel in their output slices
    (DeepMedic's balanced tumour / background centres); the rest lie anywhere.
    ``bg_per_fg`` sets the class balance of the loss: within a batch, the loss
    is ``(mean CE over tumour voxels + bg_per_fg * mean CE over background
    voxels) / (1 + bg_per_fg)``, i.e. every background voxel of the output
    slices contributes, weighted so that background weighs ``bg_per_fg`` times
    as much as tumour in total (the balanced voxel sample of DeepMedic without
    its sampling noise). 1 is DeepMedic's 50/50 prior, which calibrates the
    classifier to a far higher tumour prior than a study's ~1% and over-predicts;
    ``None`` uses the plain mean over all voxels (the study's own prior), which
    under-predicts. On the tiny-grid experiment (docs/ML.md) 3 gave DeepMedic
    DSC 0.44 (precision 0.37), ``None`` 0.30 (recall 0.20) and 10 (the default)
    0.58, with both ensembles beating each network. A batch without tumour uses
    the background mean.

    Batch norm: a head window has tens of thousands of voxels of real anatomy,
    so its batch statistics, and the running statistics used at inference,
    match whole-study statistics (small segments' did not).

    ``sampler="segment"`` is the previous sampler (cubes of ``segment_dhw``
    centred on tumour / background voxels, loss on the interior inside
    ``loss_margin_dhw``), kept for comparison and for memory-bound GPUs: a
    head window of the ``paper`` grid is ~20 x 400 x 350 voxels.
    """

    epochs: int = 35
    lr: float = 1e-3
    batch_size: int = 2
    segments_per_epoch: int = 32  # windows (or segments) per epoch
    sampler: str = "head"  # head | segment
    out_depth: int = 4  # head windows: output slices in the loss
    bg_per_fg: float | None = 10.0  # head windows: background : tumour loss weight
    segment_dhw: tuple[int, int, int] = (12, 48, 48)  # segment sampler: (z, y, x) voxels
    loss_margin_dhw: tuple[int, int, int] = (2, 8, 8)  # segment sampler: border excluded
    fg_fraction: float = 0.5  # share of windows / segments centred on tumour
    flip: bool = True
    max_minutes: float | None = None
    tile_depth: int = 64  # DeepMedic output slices per pass (plus z_halo each side): fewer passes, less halo recomputed

    def validate(self) -> None:
        if self.sampler not in _DM_SAMPLERS:
            raise ValueError(f"sampler must be one of {_DM_SAMPLERS}, got {self.sampler!r}")
        if not 0.0 <= self.fg_fraction <= 1.0:
            raise ValueError("fg_fraction must be in [0, 1]")
        if any(2 * m >= s for m, s in zip(self.loss_margin_dhw, self.segment_dhw, strict=True)):
            raise ValueError("loss_margin_dhw leaves no interior in segment_dhw")
        if self.epochs < 1 or self.batch_size < 1 or self.segments_per_epoch < 1:
            raise ValueError("epochs, batch_size and segments_per_epoch must be >= 1")
        if self.out_depth < 1:
            raise ValueError("out_depth must be >= 1")
        if self.bg_per_fg is not None and self.bg_per_fg <= 0:
            raise ValueError("bg_per_fg must be > 0 or None")


@dataclass
class EnsembleTrainConfig:
    preset: str = "lite"  # network preset: paper | lite
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # mixed precision on CUDA only
    threshold: float = 0.5
    crop_to_head: bool = True
    connectivity: int = 26
    max_minutes: float | None = None  # whole run; split by unet_time_share
    unet_time_share: float = 0.5
    # Operating point (ml.inference.rule): calibrated on the validation cases
    # after training, or the plain ``threshold`` when off or without them.
    calibrate: bool = True
    max_fp_per_case: float = 1.0
    calibration_min_mm3: float = 100.0
    unet: UNetTrainConfig = field(default_factory=UNetTrainConfig)
    deepmedic: DeepMedicTrainConfig = field(default_factory=DeepMedicTrainConfig)
    # Training-time augmentation of both networks' samples (ml.augment); off by
    # default (the paper's recipe), on in the ``lite`` recipe.
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def validate(self) -> None:
        from ml.networks import NETWORK_PRESETS

        if self.preset not in NETWORK_PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}")
        if not 0.0 < self.unet_time_share < 1.0:
            raise ValueError("unet_time_share must be in (0, 1)")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be in (0, 1)")
        if self.max_fp_per_case < 0 or self.calibration_min_mm3 < 0:
            raise ValueError("max_fp_per_case and calibration_min_mm3 must be >= 0")
        self.unet.validate()
        self.deepmedic.validate()
        self.augment.validate()

    @classmethod
    def for_grid(cls, grid: str, **top: Any) -> EnsembleTrainConfig:
        """The recipe for a model grid (``GRID_RECIPES``), with top-level fields in ``top``."""
        from ml.presets import grid_preset

        spec = grid_preset(grid)
        recipe = GRID_RECIPES.get(grid, {})
        data: dict[str, Any] = {"preset": spec.network_preset}
        data.update({k: v for k, v in recipe.items() if k not in _SECTIONS})
        data.update({k: v for k, v in top.items() if k not in _SECTIONS})
        for section in _SECTIONS:
            data[section] = {**recipe.get(section, {}), **top.get(section, {})}
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnsembleTrainConfig:
        data = dict(data)
        unet = _from_dict(UNetTrainConfig, data.pop("unet", {}))
        dm = _from_dict(DeepMedicTrainConfig, data.pop("deepmedic", {}))
        aug = _from_dict(AugmentConfig, data.pop("augment", {}))
        return _from_dict(cls, data, unet=unet, deepmedic=dm, augment=aug)

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> EnsembleTrainConfig:
        text = str(path_or_text)
        if not text.lstrip().startswith("{"):
            text = Path(text).read_text()
        return cls.from_dict(json.loads(text))


# Per-grid training recipes (the dataclass defaults are the paper's). ``lite`` is
# sized for two CPU cores and a budget of minutes (docs/ML.md, "lite quality"):
# two slabs per U-Net step take PyTorch's oneDNN convolutions (a single 8-slice
# slab falls on the slow reference kernel: 5.4 s per step against 1.6 s for
# two), 30 steps an epoch keep the whole-study validation to ~20% of the time;
# a DeepMedic head window with 20 output slices costs ~15 s against ~11 s for 4
# (the 2 x 8 slices of context dominate). DeepMedic learns far slower per CPU
# second, so the U-Net gets three quarters of a budget and calibration weighs
# the two maps (ml.inference.rule). The U-Net's output bias starts at logit(0.01)
# (the first steps need not silence the whole head first), and the operating point
# is calibrated for half the target's false positives (0.5 a case), leaving margin
# for the few validation studies it is chosen on. ``lite`` trains with augmentation
# (bias field, gamma, noise, blur, thicker slices, small rotations and scaling;
# docs/ML.md "Augmentation") so it does not learn one generator's look.
GRID_RECIPES: dict[str, dict[str, Any]] = {
    "paper": {},
    "lite": {
        "unet_time_share": 0.75,
        "max_fp_per_case": 0.5,
        "unet": {"batch_size": 2, "steps_per_epoch": 30, "init_prior": 0.01},
        "deepmedic": {"batch_size": 1, "out_depth": 20, "segments_per_epoch": 8},
        "augment": {"enabled": True},
    },
    "tiny": {},
}


def _from_dict(cls, data: dict[str, Any], **extra: Any):
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values, **extra)
