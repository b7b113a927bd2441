"""The paper's comparisons on our data, one training seed at a time.

For a seed, three networks are trained from that seed on the same cases
(``ml.training.train_network``): the U-Net with Dice, the U-Net with
volume-aware Dice (BR), and DeepMedic; two servable ensembles are written
(each U-Net + the shared DeepMedic, ``ensemble_dice`` / ``ensemble_voldice``)
and all five configurations are evaluated on the test studies at the paper's
threshold 0.5, the ensembles as the plain mean of the two maps (docs/METHOD.md).
The results go to ``<work>/seed<N>/results.json``; ``ml.evaluation.paper_tables``
prints them beside the paper's.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ml.evaluation.paper_tables import LABELS, fmt
from ml.imaging.pipeline import prepare_study
from ml.inference.sliding import head_bbox, predict_deepmedic, predict_in_box, predict_unet
from ml.metrics import aggregate, detection_summary, evaluate_case
from ml.networks.checkpoint import load_checkpoint, network_from_checkpoint
from ml.synthetic import generate_study
from ml.training import (
    Case,
    DeepMedicTrainConfig,
    EnsembleTrainConfig,
    UNetTrainConfig,
    load_case,
    train_network,
    write_manifest,
)
from ml.training.data import read_spacing

Log = Callable[[str], None]
TEST_THRESHOLD = 0.5  # the paper's
TARGET_MIN_MM3 = 100.0  # lesions the lite quality target counts


@dataclass(frozen=True)
class ExperimentSettings:
    """How each seed's three networks are trained (the CLI's options)."""

    work: Path
    preset: str = "lite"
    unet_epochs: int = 200
    unet_steps: int = 20
    deepmedic_epochs: int = 100
    deepmedic_segments: int = 32
    deepmedic_batch: int = 2
    deepmedic_sampler: str = "head"
    deepmedic_out_depth: int = 4
    deepmedic_bg_per_fg: float | None = 10.0
    deepmedic_segment: Sequence[int] = (12, 48, 48)
    deepmedic_margin: Sequence[int] = (2, 8, 8)
    minutes_per_net: float = 4.0
    resume: bool = False

    def config(self, seed: int, loss: str) -> EnsembleTrainConfig:
        """The training config of one run: U-Net ``loss`` and these DeepMedic options."""
        return EnsembleTrainConfig(
            preset=self.preset,
            seed=seed,
            unet=UNetTrainConfig(
                epochs=self.unet_epochs, steps_per_epoch=self.unet_steps, loss=loss
            ),
            deepmedic=DeepMedicTrainConfig(
                epochs=self.deepmedic_epochs,
                segments_per_epoch=self.deepmedic_segments,
                batch_size=self.deepmedic_batch,
                sampler=self.deepmedic_sampler,
                out_depth=self.deepmedic_out_depth,
                bg_per_fg=self.deepmedic_bg_per_fg,
                segment_dhw=tuple(self.deepmedic_segment),
                loss_margin_dhw=tuple(self.deepmedic_margin),
            ),
        )


def list_prepared(data: Path) -> list[Path]:
    """Prepared studies with ``ground_truth.npy`` under ``data``, sorted; ``ValueError`` if none."""
    dirs = sorted(d for d in data.iterdir() if (d / "ground_truth.npy").exists())
    if not dirs:
        raise ValueError(f"no prepared studies with ground_truth.npy under {data}")
    return dirs


def prepare_synthetic(work: Path, grid: str, first_seed: int, n: int, log: Log) -> list[Path]:
    """``n`` synthetic studies (seeds from ``first_seed``) generated and prepared under
    ``work/synthetic`` and ``work/prepared``; studies already prepared are reused."""
    out = []
    for seed in range(first_seed, first_seed + n):
        raw = work / "synthetic" / f"case_{seed:05d}"
        prepared = work / "prepared" / f"case_{seed:05d}"
        if not (prepared / "ground_truth.npy").exists():
            generate_study(raw, seed=seed, grid=grid)
            prepare_study(
                raw / "dicom", prepared, grid=grid, ground_truth=raw / "ground_truth_ct.nii.gz"
            )
            log(f"prepared {prepared}")
        out.append(prepared)
    return out


# name -> (arch, U-Net loss of its config)
RUNS = {
    "unet_dice": ("unet", "dice"),
    "unet_voldice": ("unet", "vol_dice_br"),
    "deepmedic": ("deepmedic", "vol_dice_br"),
}


def _validation_logger(seed: int, log: Log) -> Callable[[dict[str, Any]], None]:
    def progress(event: dict[str, Any]) -> None:
        if event["stage"] == "validate":
            v = event["val"]
            log(
                f"  seed {seed} {event['net']:9s} epoch {event['epoch']:3d} loss {event['loss']:.4f} "
                f"val DSC {fmt(v['dsc'])} recall {fmt(v['recall'])} small-recall {fmt(v['small_pixel_recall'])}"
            )

    return progress


def train_runs(
    seed: int,
    settings: ExperimentSettings,
    train_cases: list[Case],
    val_cases: list[Case],
    run_dir: Path,
    log: Log,
) -> dict[str, dict[str, Any]]:
    """Train the three networks of ``RUNS`` into ``run_dir/<name>.pt``; their summaries."""
    summaries = {}
    for name, (arch, loss) in RUNS.items():
        t0 = time.monotonic()
        summaries[name] = train_network(
            arch,
            settings.config(seed, loss),
            train_cases=train_cases,
            val_cases=val_cases,
            out_path=run_dir / f"{name}.pt",
            progress=_validation_logger(seed, log),
            max_minutes=settings.minutes_per_net,
            resume=settings.resume,
        )
        log(
            f"  seed {seed} {name}: best epoch {summaries[name]['epoch']} of {summaries[name]['epochs_run']} in {time.monotonic() - t0:.0f} s"
        )
    return summaries


def write_ensembles(
    seed: int,
    settings: ExperimentSettings,
    run_dir: Path,
    summaries: dict[str, dict[str, Any]],
    case_ids: tuple[list[str], list[str]],
) -> None:
    """Two servable model directories (the ensembles), sharing the DeepMedic weights."""
    train_ids, val_ids = case_ids
    for variant in ("dice", "voldice"):
        model_dir = run_dir / f"ensemble_{variant}"
        model_dir.mkdir(exist_ok=True)
        shutil.copyfile(run_dir / f"unet_{variant}.pt", model_dir / "unet.pt")
        shutil.copyfile(run_dir / "deepmedic.pt", model_dir / "deepmedic.pt")
        write_manifest(
            model_dir,
            settings.config(seed, RUNS[f"unet_{variant}"][1]),
            {
                "unet": {**summaries[f"unet_{variant}"], "path": "unet.pt"},
                "deepmedic": {**summaries["deepmedic"], "path": "deepmedic.pt"},
            },
            train_case_ids=train_ids,
            val_case_ids=val_ids,
        )


def _test_probabilities(nets: dict[str, nn.Module], image: np.ndarray) -> dict[str, np.ndarray]:
    """Each network's map inside the head box, and the two ensemble means."""
    box = head_bbox(image)
    probs = {
        name: predict_in_box(
            (lambda im, n=net: predict_unet(n, im, stride=4))
            if name.startswith("unet")
            else (lambda im, n=net: predict_deepmedic(n, im)),
            image,
            box,
        )
        for name, net in nets.items()
    }
    probs["ensemble_dice"] = (probs["unet_dice"] + probs["deepmedic"]) / 2
    probs["ensemble_voldice"] = (probs["unet_voldice"] + probs["deepmedic"]) / 2
    return probs


def evaluate_test(run_dir: Path, test: Sequence[Path]) -> dict[str, list[dict[str, Any]]]:
    """Per-case ``evaluate_case`` results of the five configurations on ``test``."""
    nets = {name: network_from_checkpoint(load_checkpoint(run_dir / f"{name}.pt")) for name in RUNS}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in LABELS}
    for study in test:
        image = np.load(study / "model_input.npy")
        gt = np.load(study / "ground_truth.npy")
        spacing = read_spacing(study)
        probs = _test_probabilities(nets, image)
        for name in LABELS:
            r = evaluate_case(probs[name] >= TEST_THRESHOLD, gt, spacing)
            r["case_id"] = study.name
            results[name].append(r)
    return results


def summarise(results: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """``aggregate`` of each configuration plus its lite-target ``detection_summary``."""
    summary = {name: aggregate(r) for name, r in results.items()}
    for name, r in results.items():
        summary[name]["target_100mm3"] = detection_summary(r, TARGET_MIN_MM3)
    return summary


def run_seed(
    seed: int,
    settings: ExperimentSettings,
    splits: tuple[Sequence[Path], Sequence[Path], Sequence[Path]],
    log: Log,
) -> dict[str, Any]:
    """Train, write the ensembles, evaluate on the test studies; write and return
    ``{"seed", "summary", "training"}`` (``results.json`` also has the cases).

    ``splits``: (train, validation, test) prepared-study directories.
    """
    train, val, test = splits
    run_dir = settings.work / f"seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    train_cases = [load_case(d) for d in train]
    val_cases = [load_case(d) for d in val]
    summaries = train_runs(seed, settings, train_cases, val_cases, run_dir, log)
    case_ids = ([c.case_id for c in train_cases], [c.case_id for c in val_cases])
    write_ensembles(seed, settings, run_dir, summaries, case_ids)
    results = evaluate_test(run_dir, test)
    out = {
        "seed": seed,
        "summary": summarise(results),
        "training": {
            k: {kk: v for kk, v in s.items() if kk not in ("history", "val_probs")}
            for k, s in summaries.items()
        },
    }
    (run_dir / "results.json").write_text(json.dumps({**out, "cases": results}, indent=2))
    return out


def load_seed(work: Path, seed: int) -> dict[str, Any]:
    """A seed's saved ``results.json`` (lite targets recomputed from its cases)."""
    data = json.loads((work / f"seed{seed}" / "results.json").read_text())
    for name, cases in data["cases"].items():
        data["summary"][name]["target_100mm3"] = detection_summary(cases, TARGET_MIN_MM3)
    return {k: data[k] for k in ("seed", "summary", "training")}
