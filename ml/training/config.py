"""Typed training configs, serialised to and from JSON (no exec'd configuration).

Defaults are the paper's (METHOD.md section 2) where it gives a value; the
rest are ours and documented in docs/ML.md.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

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

    def validate(self) -> None:
        if self.loss not in _LOSSES:
            raise ValueError(f"loss must be one of {_LOSSES}, got {self.loss!r}")
        if not 0.0 <= self.tumour_fraction <= 1.0:
            raise ValueError("tumour_fraction must be in [0, 1]")
        if self.epochs < 1 or self.batch_size < 1 or self.slab_depth < 1:
            raise ValueError("epochs, batch_size and slab_depth must be >= 1")
        if not 1 <= self.val_stride <= self.slab_depth:
            raise ValueError("val_stride must be in 1..slab_depth")


@dataclass
class DeepMedicTrainConfig:
    epochs: int = 35
    lr: float = 1e-3
    batch_size: int = 8
    segments_per_epoch: int = 256
    segment_dhw: tuple[int, int, int] = (12, 48, 48)  # input segment, (z, y, x) voxels
    loss_margin_dhw: tuple[int, int, int] = (2, 8, 8)  # border excluded from the loss
    fg_fraction: float = 0.5  # share of segments centred on a tumour voxel
    flip: bool = True
    max_minutes: float | None = None
    tile_depth: int = 16

    def validate(self) -> None:
        if not 0.0 <= self.fg_fraction <= 1.0:
            raise ValueError("fg_fraction must be in [0, 1]")
        if any(2 * m >= s for m, s in zip(self.loss_margin_dhw, self.segment_dhw, strict=True)):
            raise ValueError("loss_margin_dhw leaves no interior in segment_dhw")
        if self.epochs < 1 or self.batch_size < 1 or self.segments_per_epoch < 1:
            raise ValueError("epochs, batch_size and segments_per_epoch must be >= 1")


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
    unet: UNetTrainConfig = field(default_factory=UNetTrainConfig)
    deepmedic: DeepMedicTrainConfig = field(default_factory=DeepMedicTrainConfig)

    def validate(self) -> None:
        from ml.networks import NETWORK_PRESETS

        if self.preset not in NETWORK_PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}")
        if not 0.0 < self.unet_time_share < 1.0:
            raise ValueError("unet_time_share must be in (0, 1)")
        self.unet.validate()
        self.deepmedic.validate()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnsembleTrainConfig:
        data = dict(data)
        unet = _from_dict(UNetTrainConfig, data.pop("unet", {}))
        dm = _from_dict(DeepMedicTrainConfig, data.pop("deepmedic", {}))
        return _from_dict(cls, data, unet=unet, deepmedic=dm)

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> EnsembleTrainConfig:
        text = str(path_or_text)
        if not text.lstrip().startswith("{"):
            text = Path(text).read_text()
        return cls.from_dict(json.loads(text))


def _from_dict(cls, data: dict[str, Any], **extra: Any):
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values, **extra)
