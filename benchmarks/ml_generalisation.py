"""Does the model hold up on studies of a style it was not trained on?

Trains the ensemble (``lite`` recipe and networks; ``--grid tiny`` studies by default,
the only size two shared CPU cores can train in minutes) on ``classic``-style synthetic
studies, once without and once with training augmentation (``ml.augment``), for the
same time budget each, and scores both on ``varied``-style studies
(``ml.synthetic.generate_study(style="varied")``: other head shapes, solid and faint
lesions, lesions against the dura and beside vessels, 3D / thick-slice MR, motion).

python benchmarks/ml_generalisation.py [--work var/generalisation] [--grid tiny]
    [--train 0-5] [--val 6-7] [--test 300-305] [--minutes 3] [--seed 0]
    [--variants plain,augment] [--threads 2] [--eval-only]

Per variant and per combination (U-Net alone >= 0.5, DeepMedic alone >= 0.5, the
model's calibrated rule ``ml.inference.rule``, the union rule ``ml.inference.union``
calibrated on the same validation studies): lesion sensitivity per size group (< 100,
100-500, 500-1500, > 1500 mm3; any-overlap rule), FP lesions per study and mean
lesion-wise Dice (``ml.metrics.lesionwise``), and lesions matched one-to-one at
IoU >= 0.5 (BraTS-style; a component spread over the head "finds" every lesion
under the any-overlap rule, not under this one). Missing studies are generated and
prepared first (not counted in the budget). Results go to
``<work>/results_seed<seed>_<variants>.json``. The variants can run as separate
processes side by side (``--variants plain`` and ``--variants augment``), which on a
shared machine gives both the same load.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ml.cli.synth import parse_seeds  # noqa: E402
from ml.inference import EnsemblePredictor  # noqa: E402
from ml.inference.rule import ValidationMaps  # noqa: E402
from ml.inference.union import calibrate_union  # noqa: E402
from ml.metrics.lesionwise import GROUP_NAMES, lesionwise_case, size_group_summary  # noqa: E402
from ml.training import EnsembleTrainConfig, train_ensemble  # noqa: E402
from ml.training.data import read_spacing  # noqa: E402

COMBINATIONS = ("unet", "deepmedic", "model_rule", "union")


def ensure_studies(work: Path, grid: str, style: str, seeds: list[int]) -> list[Path]:
    """Prepared study folders ``<work>/prepared/<style>/case_NNNNN``, made if missing."""
    dirs = []
    for seed in seeds:
        name = f"case_{seed:05d}"
        prepared = work / "prepared" / style / name
        if not (prepared / "ground_truth.npy").exists():
            from ml.imaging.pipeline import prepare_study
            from ml.synthetic import generate_study

            t0 = time.monotonic()
            synth = work / "synth" / style / name
            generate_study(synth, seed=seed, grid=grid, style=style)
            prepare_study(
                synth / "dicom", prepared, grid=grid, ground_truth=synth / "ground_truth_ct.nii.gz"
            )
            print(f"generated {style} {name} in {time.monotonic() - t0:.0f} s", flush=True)
        dirs.append(prepared)
    return dirs


def train_variant(args: argparse.Namespace, variant: str, train, val, out: Path) -> dict:
    config = EnsembleTrainConfig.for_grid(
        "lite",
        seed=args.seed,
        max_minutes=args.minutes,
        augment={"enabled": variant == "augment"},
    )
    t0 = time.monotonic()

    def progress(event: dict) -> None:
        if event["stage"] == "validate":
            v = event["val"]
            dsc = None if v["dsc"] is None else round(v["dsc"], 3)
            print(
                f"  {variant} {event['net']:9s} epoch {event['epoch']:3d} val DSC {dsc}", flush=True
            )

    manifest = train_ensemble(
        config, train_dirs=train, val_dirs=val, out_dir=out, progress=progress
    )
    print(f"  {variant}: trained in {(time.monotonic() - t0) / 60:.1f} min", flush=True)
    return manifest


def _maps(predictor: EnsemblePredictor, study: Path):
    x = np.load(study / "model_input.npy")
    gt = np.load(study / "ground_truth.npy")
    u, d = predictor.probabilities(x)
    return u, d, gt, read_spacing(study)


def evaluate_variant(model_dir: Path, val, test, config: EnsembleTrainConfig) -> dict:
    predictor = EnsemblePredictor.from_dir(model_dir)
    val_maps = [ValidationMaps(*_maps(predictor, s)) for s in val]
    union, union_record = calibrate_union(
        val_maps,
        max_fp_per_case=config.max_fp_per_case,
        min_lesion_mm3=config.calibration_min_mm3,
    )
    cases: dict[str, list] = {c: [] for c in COMBINATIONS}
    for study in test:
        u, d, gt, spacing = _maps(predictor, study)
        masks = {
            "unet": u >= 0.5,
            "deepmedic": d >= 0.5,
            "model_rule": predictor.rule.apply(u, d)[0] > 0,
            "union": union.apply(u, d)[0] > 0,
        }
        for name, mask in masks.items():
            cases[name].append(lesionwise_case(mask, gt, spacing))
    return {
        "model_rule": predictor.rule_description(),
        "union_rule": union.describe(),
        "union_calibration": union_record,
        "summary": {name: size_group_summary(rows) for name, rows in cases.items()},
    }


def _cell(block: dict) -> str:
    return f"{block['n_detected']}/{block['n_lesions']}" if block["n_lesions"] else "-"


def print_table(results: dict) -> None:
    cols = ["variant", "combination", *GROUP_NAMES, "all", "FP / study", "lesion Dice", "IoU>=0.5"]
    print("| " + " | ".join(cols) + " |")
    print("|" + " --- |" * len(cols))
    for variant, res in results.items():
        for combo, summ in res["summary"].items():
            cells = [_cell(summ["groups"][g]) for g in GROUP_NAMES]
            o = summ["overall"]
            dice = "-" if o["lesion_dice"] is None else f"{o['lesion_dice']:.3f}"
            b = summ["brats"]
            matched = f"{b['tp']}/{b['tp'] + b['fn']}"
            row = [variant, combo, *cells, _cell(o), f"{o['fp_per_study']:.2f}", dice, matched]
            print("| " + " | ".join(row) + " |")
        print(f"  {variant}: model rule = {res['model_rule']}; union = {res['union_rule']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("var/generalisation"))
    ap.add_argument("--grid", default="tiny")
    ap.add_argument("--train", default="0-5")
    ap.add_argument("--val", default="6-7")
    ap.add_argument("--test", default="300-305")
    ap.add_argument("--minutes", type=float, default=3.0, help="training budget per variant")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default="plain,augment")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-only", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    train = ensure_studies(args.work, args.grid, "classic", parse_seeds(args.train))
    val = ensure_studies(args.work, args.grid, "classic", parse_seeds(args.val))
    test = ensure_studies(args.work, args.grid, "varied", parse_seeds(args.test))
    results = {}
    for variant in args.variants.split(","):
        out = args.work / "models" / f"{variant}_seed{args.seed}"
        if not args.eval_only:
            train_variant(args, variant, train, val, out)
        config = EnsembleTrainConfig.for_grid("lite")
        t0 = time.monotonic()
        results[variant] = evaluate_variant(out, val, test, config)
        print(f"  {variant}: evaluated in {time.monotonic() - t0:.0f} s", flush=True)
    tag = args.variants.replace(",", "+")
    path = args.work / f"results_seed{args.seed}_{tag}.json"
    path.write_text(
        json.dumps(
            {"args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=2
        )
    )
    print_table(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
