"""``train_ensemble``: both networks of the ensemble into one model directory."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml.inference.rule import LesionRule, ValidationMaps, calibrate_rule
from ml.networks.checkpoint import (
    atomic_write_json,
    load_checkpoint,
    network_from_checkpoint,
    sha256_file,
    utc_now,
)
from ml.training.config import EnsembleTrainConfig
from ml.training.data import Case, load_case
from ml.training.trainer import (
    Progress,
    ShouldStop,
    network_probability,
    resolve_device,
    train_network,
)

MANIFEST_FORMAT = 1


def inference_settings(
    config: EnsembleTrainConfig, rule: LesionRule | None = None
) -> dict[str, Any]:
    """How the predictor must run these networks (stored in the manifest)."""
    rule = rule or LesionRule(config.threshold, config.threshold, 0.5, config.connectivity)
    return {
        "threshold": rule.threshold,
        "peak_threshold": rule.peak_threshold,
        "unet_weight": rule.unet_weight,
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
    rule: LesionRule | None = None,
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
        "inference": inference_settings(config, rule),
        "torch_version": torch.__version__,
        **(extra or {}),
    }
    manifest = json.loads(json.dumps(manifest))  # what readers of the file will see
    atomic_write_json(out_dir / "manifest.json", manifest)
    return manifest


# Seconds kept back from DeepMedic's budget per validation case for the
# calibration that follows it (measured: 3.4 s for 4 lite cases, 2 cores).
CALIBRATION_RESERVE_S_PER_CASE = 2.0


def calibration_reserve_s(config: EnsembleTrainConfig, n_val_cases: int) -> float:
    """Time to leave for operating-point calibration at the end of a budgeted run."""
    return CALIBRATION_RESERVE_S_PER_CASE * n_val_cases if config.calibrate else 0.0


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
    t0 = time.monotonic()  # the budget covers loading, both networks and calibration
    load = {"crop_to_head": config.crop_to_head, "connectivity": config.connectivity}
    train_cases = [load_case(d, **load) for d in train_dirs]
    val_cases = [load_case(d, **load) for d in val_dirs]
    results: dict[str, dict[str, Any]] = {}
    for arch in ("unet", "deepmedic"):
        budget = None
        if config.max_minutes is not None:
            spent = (time.monotonic() - t0) / 60
            budget = (
                config.max_minutes * config.unet_time_share - spent
                if arch == "unet"
                else config.max_minutes - spent - calibration_reserve_s(config, len(val_cases)) / 60
            )
            budget = max(budget, 0.05)
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
    val_probs = {arch: res.pop("val_probs", None) for arch, res in results.items()}
    rule, calibration = None, None
    if config.calibrate and val_cases:
        rule, calibration = calibrate(config, val_cases, val_probs, out_dir)
        best = next(r for r in calibration["table"] if r["chosen"])
        (progress or (lambda event: None))(
            {
                "stage": "calibrate",
                "message": (
                    f"{rule.describe()}: {best['n_detected']}/{best['n_lesions']} validation "
                    f"lesions >= {config.calibration_min_mm3:g} mm3, "
                    f"{best['fp_lesions_per_case']:.2f} FP lesions per case, DSC {best['dsc']:.3f}"
                ),
                "rule": rule.to_dict(),
            }
        )
    return write_manifest(
        out_dir,
        config,
        results,
        train_case_ids=[c.case_id for c in train_cases],
        val_case_ids=[c.case_id for c in val_cases],
        extra={
            "warm_start_dir": str(warm_start_dir) if warm_start_dir else None,
            "calibration": calibration,
        },
        rule=rule,
    )


def calibrate(
    config: EnsembleTrainConfig,
    val_cases: Sequence[Case],
    val_probs: dict[str, list[np.ndarray] | None],
    out_dir: Path,
) -> tuple[LesionRule, dict[str, Any]]:
    """The operating point on the validation cases (``ml.inference.rule.calibrate_rule``).

    Uses the maps each network's best epoch was validated with; a network
    without them (resumed run) is run again from its saved best weights.
    """
    device = resolve_device(config.device)
    maps = {}
    for arch in ("unet", "deepmedic"):
        probs = val_probs.get(arch)
        if probs is None or len(probs) != len(val_cases):
            net = network_from_checkpoint(load_checkpoint(out_dir / f"{arch}.pt")).to(device)
            probs = [
                network_probability(
                    arch,
                    net,
                    c.image,
                    slab_depth=config.unet.slab_depth,
                    slab_stride=config.unet.val_stride,
                    tile_depth=config.deepmedic.tile_depth,
                    device=device,
                )
                for c in val_cases
            ]
        maps[arch] = probs
    cases = [
        ValidationMaps(u, d, c.gt, c.spacing_mm)
        for u, d, c in zip(maps["unet"], maps["deepmedic"], val_cases, strict=True)
    ]
    rule, table = calibrate_rule(
        cases,
        max_fp_per_case=config.max_fp_per_case,
        min_lesion_mm3=config.calibration_min_mm3,
        connectivity=config.connectivity,
    )
    return rule, {
        "rule": rule.to_dict(),
        "max_fp_per_case": config.max_fp_per_case,
        "min_lesion_mm3": config.calibration_min_mm3,
        "val_case_ids": [c.case_id for c in val_cases],
        "table": table,
    }
