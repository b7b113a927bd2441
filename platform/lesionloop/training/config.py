"""The training configuration a run uses, as a plain dict (no torch in the web process).

The dict has the fields of ``ml.training.EnsembleTrainConfig``; the runner
validates it. Defaults per grid keep CPU runs short; admins may override a
whitelisted few per run.
"""

from __future__ import annotations

import copy
import hashlib
import math
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
        "augment": {"enabled": True},
    },
    "paper": {},
}

# Admin-settable per run: {section: {field: (type, minimum, maximum)}}; "" is the top
# level. The bounds keep a run inside what one machine can do and what the recipes were
# tuned for (the paper trains the U-Net 300 epochs, DeepMedic 35; docs/ML.md): a run
# outside them is a typo or an attempt to occupy the training GPU, refused with 400.
# ``max_minutes`` is also capped by ``LESIONLOOP_TRAIN_MAX_MINUTES`` (the supervisor's
# hard limit), checked in ``validate_overrides``.
Bound = tuple[type, float, float]
OVERRIDABLE: dict[str, dict[str, Bound]] = {
    "": {"seed": (int, 0, 2**31 - 1), "max_minutes": (float, 0.5, 24 * 60)},
    "unet": {
        "epochs": (int, 1, 1000),
        "steps_per_epoch": (int, 1, 10_000),
        "batch_size": (int, 1, 16),
        "lr": (float, 1e-6, 0.1),
        "loss": (str, 0, 0),
    },
    "deepmedic": {
        "epochs": (int, 1, 500),
        "segments_per_epoch": (int, 1, 10_000),
        "batch_size": (int, 1, 16),
        "lr": (float, 1e-6, 0.1),
    },
}
UNET_LOSSES = ("dice", "vol_dice_br", "vol_dice_cr")


def validate_overrides(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Check admin overrides against the whitelist and its bounds.

    Raises ``DomainError`` (400): ``invalid_hyperparameter`` for an unknown field or a
    value of the wrong kind, ``hyperparameter_out_of_range`` (with ``field``, ``min``,
    ``max``) for a number outside its bounds.
    """
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


def _bounds(name: str, low: float, high: float) -> tuple[float, float]:
    if name == "max_minutes":
        return low, min(high, float(settings.LESIONLOOP_TRAIN_MAX_MINUTES))
    return low, high


def _check(name: str, allowed: dict[str, Bound], key: str, value: Any) -> Any:
    spec = allowed.get(key) if isinstance(key, str) else None
    if spec is None:
        raise DomainError(
            f"{name} cannot be set for a training run.", code="invalid_hyperparameter"
        )
    kind, low, high = spec
    if kind is str:
        if value not in UNET_LOSSES:
            raise DomainError(
                f"{name} must be one of {', '.join(UNET_LOSSES)}.", code="invalid_hyperparameter"
            )
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DomainError(f"{name} must be a finite number.", code="invalid_hyperparameter")
    if kind is int and int(value) != value:
        raise DomainError(f"{name} must be a whole number.", code="invalid_hyperparameter")
    low, high = _bounds(name, low, high)
    if not low <= value <= high:
        raise DomainError(
            f"{name} must be between {low:g} and {high:g} (got {value:g}).",
            code="hyperparameter_out_of_range",
            extra={"field": name, "min": low, "max": high},
        )
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
