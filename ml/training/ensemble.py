"""``train_ensemble``: both networks of the ensemble into one model directory."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ml.networks.checkpoint import atomic_write_json, sha256_file, utc_now
from ml.training.config import EnsembleTrainConfig
from ml.training.data import load_case
from ml.training.trainer import Progress, ShouldStop, train_network

MANIFEST_FORMAT = 1


def inference_settings(config: EnsembleTrainConfig) -> dict[str, Any]:
    """How the predictor must run these networks (stored in the manifest)."""
    return {
        "threshold": config.threshold,
        "slab_depth": config.unet.slab_depth,
        "slab_stride": config.unet.val_stride,
        "tile_depth": config.deepmedic.tile_depth,
        "crop_to_head": config.crop_to_head,
        "connectivity": config.connectivity,
    }


def write_manifest(
    out_dir: str | Path,
    config: EnsembleTrainConfig,
    results: dict[str, dict[str, Any]],
    *,
    train_case_ids: Sequence[str],
    val_case_ids: Sequence[str],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``manifest.json`` for ``unet.pt`` + ``deepmedic.pt`` in ``out_dir``.

    ``results`` maps arch to a ``train_network`` summary (at least ``path``);
    the sha256 is recomputed from the file on disk.
    """
    out_dir = Path(out_dir)
    files = {}
    for arch, res in results.items():
        path = out_dir / res["path"]
        files[arch] = {
            "path": res["path"],
            "sha256": sha256_file(path),
            "epoch": res.get("epoch"),
            "epochs_run": res.get("epochs_run"),
            "stopped": res.get("stopped"),
        }
    manifest = {
        "format": MANIFEST_FORMAT,
        "created_utc": utc_now(),
        "preset": config.preset,
        "seed": config.seed,
        "config": config.to_dict(),
        "files": files,
        "metrics": {arch: res.get("metrics") for arch, res in results.items()},
        "train_case_ids": list(train_case_ids),
        "val_case_ids": list(val_case_ids),
        "inference": inference_settings(config),
        "torch_version": torch.__version__,
        **(extra or {}),
    }
    manifest = json.loads(json.dumps(manifest))  # what readers of the file will see
    atomic_write_json(out_dir / "manifest.json", manifest)
    return manifest


def train_ensemble(
    config: EnsembleTrainConfig,
    *,
    train_dirs: Sequence[str | Path],
    val_dirs: Sequence[str | Path],
    out_dir: str | Path,
    warm_start_dir: str | Path | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Train the U-Net, then DeepMedic; write ``unet.pt``, ``deepmedic.pt`` and
    ``manifest.json`` into ``out_dir``. Returns the manifest.

    ``config.max_minutes`` bounds the whole run: the U-Net gets
    ``unet_time_share`` of it and DeepMedic what is left. ``should_stop`` is
    polled between steps and raises ``TrainingCancelled``; ``resume`` continues
    from the ``*.last.pt`` files of an interrupted run in ``out_dir``.
    """
    config.validate()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    load = {"crop_to_head": config.crop_to_head, "connectivity": config.connectivity}
    train_cases = [load_case(d, **load) for d in train_dirs]
    val_cases = [load_case(d, **load) for d in val_dirs]
    results: dict[str, dict[str, Any]] = {}
    for arch in ("unet", "deepmedic"):
        budget = None
        if config.max_minutes is not None:
            spent = (time.monotonic() - t0) / 60
            budget = (
                config.max_minutes * config.unet_time_share
                if arch == "unet"
                else max(config.max_minutes - spent, 0.05)
            )
        warm = None
        if warm_start_dir is not None:
            warm = Path(warm_start_dir) / f"{arch}.pt"
        results[arch] = train_network(
            arch,
            config,
            train_cases=train_cases,
            val_cases=val_cases,
            out_path=out_dir / f"{arch}.pt",
            warm_start=warm,
            progress=progress,
            should_stop=should_stop,
            resume=resume,
            max_minutes=budget,
        )
    return write_manifest(
        out_dir,
        config,
        results,
        train_case_ids=[c.case_id for c in train_cases],
        val_case_ids=[c.case_id for c in val_cases],
        extra={"warm_start_dir": str(warm_start_dir) if warm_start_dir else None},
    )
