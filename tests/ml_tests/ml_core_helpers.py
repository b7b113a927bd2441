"""Tiny synthetic prepared studies for the ml core tests (no other ml code used)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def blob_mask(
    shape: Sequence[int], centre: Sequence[float], radius_vox: Sequence[float]
) -> np.ndarray:
    zz, yy, xx = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    d = sum(((g - c) / r) ** 2 for g, c, r in zip((zz, yy, xx), centre, radius_vox, strict=True))
    return d <= 1.0


def make_prepared_study(
    out_dir: str | Path,
    *,
    seed: int,
    shape: tuple[int, int, int] = (12, 32, 32),
    spacing_mm: tuple[float, float, float] = (4.0, 3.0, 3.0),
    n_lesions: int = 2,
    with_gt: bool = True,
) -> Path:
    """A prepared-study directory: noisy ellipsoidal head, bright blob lesions."""
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    d, h, w = shape
    head = blob_mask(shape, (d / 2 - 0.5, h / 2 - 0.5, w / 2 - 0.5), (d, h * 0.42, w * 0.38))
    gt = np.zeros(shape, dtype=bool)
    for _ in range(n_lesions):
        r = rng.uniform(1.2, 3.0)
        centre = (
            rng.uniform(min(2, (d - 1) / 2), max(d - 3, (d - 1) / 2)),
            rng.uniform(h * 0.3, h * 0.7),
            rng.uniform(w * 0.3, w * 0.7),
        )
        gt |= blob_mask(shape, centre, (max(r * 0.75, 1.0), r, r)) & head
    mr = np.where(head, rng.normal(0.0, 0.5, shape), -1.0)
    ct = np.where(head, rng.normal(0.0, 0.5, shape), -1.0)
    mr[gt] += 3.0
    ct[gt] += 1.0
    image = np.stack([mr, ct]).astype(np.float32)
    np.save(out_dir / "model_input.npy", image)
    if with_gt:
        np.save(out_dir / "ground_truth.npy", gt.astype(np.uint8))
    study = {
        "grid": {
            "preset": "test",
            "shape_dhw": list(shape),
            "spacing_mm": list(spacing_mm),
            "origin_xyz_mm": [0.0, 0.0, 0.0],
            "direction": [1, 0, 0, 0, 1, 0, 0, 0, 1],
        }
    }
    (out_dir / "study.json").write_text(json.dumps(study))
    return out_dir


def make_studies(root: str | Path, n: int, *, seed: int = 0, **kwargs) -> list[Path]:
    root = Path(root)
    return [
        make_prepared_study(root / f"case{seed + i:03d}", seed=seed + i, **kwargs) for i in range(n)
    ]
