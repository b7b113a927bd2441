"""Networks as plain ``nn.Module`` s, and their size presets.

``build(arch, preset)`` returns a freshly initialised network; ``NETWORK_PRESETS``
holds the constructor arguments, which checkpoints store so a predictor can
rebuild the exact network.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ml.networks.deepmedic import DeepMedic
from ml.networks.unet import UNet3D

__all__ = [
    "ARCHS",
    "NETWORK_PRESETS",
    "DeepMedic",
    "UNet3D",
    "build",
    "build_from_kwargs",
    "network_kwargs",
]

ARCHS = ("unet", "deepmedic")

# ``paper``: docs/METHOD.md. ``lite``: same topology, fewer feature maps, sized so the
# ensemble infers a 256x256x80 study on two CPU cores (benchmarks/ml_inference.py).
NETWORK_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {
        "unet": {"in_channels": 2, "features": (32, 64, 128, 256, 512)},
        "deepmedic": {
            "in_channels": 2,
            "features": (30, 30, 40, 40, 40, 40, 50, 50),
            "fc_features": 250,
            "n_fc": 3,
            "factors": (3, 5),
        },
    },
    "lite": {
        "unet": {"in_channels": 2, "features": (8, 16, 32, 64, 128)},
        "deepmedic": {
            "in_channels": 2,
            "features": (8, 8, 12, 12, 12, 12, 16, 16),
            "fc_features": 48,
            "n_fc": 3,
            "factors": (3, 5),
        },
    },
}

_CLASSES = {"unet": UNet3D, "deepmedic": DeepMedic}


def network_kwargs(arch: str, preset: str) -> dict[str, Any]:
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {ARCHS}")
    if preset not in NETWORK_PRESETS:
        raise ValueError(
            f"unknown network preset {preset!r}; choose one of {sorted(NETWORK_PRESETS)}"
        )
    return dict(NETWORK_PRESETS[preset][arch])


def build_from_kwargs(arch: str, kwargs: dict[str, Any]) -> nn.Module:
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {ARCHS}")
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    return _CLASSES[arch](**fixed)


def build(arch: str, preset: str) -> nn.Module:
    """A new ``UNet3D`` (``arch="unet"``) or ``DeepMedic`` for preset ``paper`` or ``lite``."""
    return build_from_kwargs(arch, network_kwargs(arch, preset))
