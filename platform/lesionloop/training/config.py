"""The training configuration a run uses, as a plain dict (no torch in the web process).

The dict has the fields of ``ml.training.EnsembleTrainConfig``; the runner
validates it. Defaults per grid keep CPU runs short; admins may override a
whitelisted few per run.
"""

from __future__ import annotations

import copy
import hashlib
import subprocess
from pathlib import Path
from typing import Any

from django.conf import settings

from lesionloop.core.exceptions import DomainError

PROJECT_ROOT = Path(__file__).resolve().parents[3]

# Epoch and sample counts per grid: the paper's (300/35 epochs) only on ``paper``.
GRID_DEFAULTS: dict[str, dict[str, Any]] = {
    "tiny": {
        "unet": {"epochs": 2, "steps_per_epoch": 4},
        "deepmedic": {"epochs": 2, "segments_per_epoch": 16, "batch_size": 4},
    },
    # ml.training.config.GRID_RECIPES["lite"] (tests/platform_tests/training checks they
    # agree): budget-limited, the U-Net gets 3/4 of max_minutes, then the operating point
    # is calibrated on the validation studies. docs/ML.md "lite quality".
    "lite": {
        "unet_time_share": 0.75,
        "max_fp_per_case": 0.5,
        "unet": {"batch_size": 2, "steps_per_epoch": 30, "init_prior": 0.01},
        "deepmedic": {"batch_size": 1, "out_depth": 20, "segments_per_epoch": 8},
    },
    "paper": {},
}

# Admin-settable per run: {section: {field: type}}; "" is the top level.
OVERRIDABLE: dict[str, dict[str, type]] = {
    "": {"seed": int, "max_minutes": float},
    "unet": {"epochs": int, "steps_per_epoch": int, "lr": float, "loss": str},
    "deepmedic": {"epochs": int, "segments_per_epoch": int, "batch_size": int, "lr": float},
}
UNET_LOSSES = ("dice", "vol_dice_br", "vol_dice_cr")


def validate_overrides(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Check admin overrides against the whitelist; raises ``DomainError`` (400)."""
    clean: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and key in OVERRIDABLE and key:
            for sub, sub_value in value.items():
                clean.setdefault(key, {})[sub] = _check(
                    f"{key}.{sub}", OVERRIDABLE[key], sub, sub_value
                )
        else:
            clean[key] = _check(key, OVERRIDABLE[""], key, value)
    return clean


def _check(name: str, allowed: dict[str, type], key: str, value: Any) -> Any:
    kind = allowed.get(key)
    if kind is None:
        raise DomainError(
            f"{name} cannot be set for a training run.", code="invalid_hyperparameter"
        )
    if kind is str:
        if value not in UNET_LOSSES:
            raise DomainError(
                f"{name} must be one of {', '.join(UNET_LOSSES)}.", code="invalid_hyperparameter"
            )
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise DomainError(f"{name} must be a positive number.", code="invalid_hyperparameter")
    if kind is int and int(value) != value:
        raise DomainError(f"{name} must be a whole number.", code="invalid_hyperparameter")
    return kind(value)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict):
            out[key] = _merge(out.get(key, {}), value)
        else:
            out[key] = value
    return out


def training_config(
    *, grid: str, seed: int, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``EnsembleTrainConfig`` dict for a run: U-Net with vol-dice BR, DeepMedic
    with cross-entropy, a time budget inside the supervisor's hard limit."""
    from ml.presets import grid_preset  # dataclasses only; no torch

    spec = grid_preset(grid)
    config: dict[str, Any] = {
        "preset": spec.network_preset,
        "seed": seed,
        "device": settings.LESIONLOOP_DEVICE,
        # Stop gracefully (keeping the best weights so far) before the hard kill.
        "max_minutes": round(settings.LESIONLOOP_TRAIN_MAX_MINUTES * 0.7, 2),
        "unet": {"loss": "vol_dice_br"},
        "deepmedic": {},
    }
    config = _merge(config, GRID_DEFAULTS.get(grid, {}))
    return _merge(config, overrides or {})


def code_version() -> str:
    """``git describe`` of the checkout plus a hash of the ml/ sources (which may be
    uncommitted), so two runs with the same string ran the same ML code."""
    digest = hashlib.sha256()
    for path in sorted((PROJECT_ROOT / "ml").rglob("*.py")):
        digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
        digest.update(path.read_bytes())
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    return f"{described or 'nogit'} ml:{digest.hexdigest()[:12]}"[:64]
