"""Reproduce the paper's comparisons on synthetic data: U-Net with Dice vs
volume-aware Dice (BR) from the same seed on the same cases, DeepMedic, and the
two ensembles; print the paper's Tables 2 and 3 beside ours.

python -m ml.cli.experiment --work var/experiment --generate 16 --grid tiny --minutes-per-net 4
python -m ml.cli.experiment --work var/experiment --data var/prepared_tiny --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

PAPER_TABLE3 = {
    "unet_dice": (0.669, 0.689, 0.700),
    "deepmedic": (0.625, 0.631, 0.734),
    "ensemble_dice": (0.719, 0.788, 0.713),
    "ensemble_voldice": (0.740, 0.779, 0.803),
    "unet_voldice": (None, None, None),
}
# Table 2: (pixel recall, detection) for small (<= 1500 mm3) and large lesions, U-Net.
PAPER_TABLE2 = {
    ("small", "unet_dice"): (0.466, 0.619),
    ("small", "unet_voldice"): (0.633, 0.672),
    ("large", "unet_dice"): (0.826, 0.987),
    ("large", "unet_voldice"): (0.828, 0.974),
}
LABELS = {
    "unet_dice": "3D U-Net, Dice",
    "unet_voldice": "3D U-Net, vol-dice BR",
    "deepmedic": "DeepMedic, cross-entropy",
    "ensemble_dice": "U-Net (Dice) + DeepMedic",
    "ensemble_voldice": "U-Net (vol-dice) + DeepMedic",
}


def prepared_dirs(args: argparse.Namespace) -> list[Path]:
    if args.data is not None:
        dirs = sorted(d for d in args.data.iterdir() if (d / "ground_truth.npy").exists())
        if not dirs:
            raise SystemExit(f"no prepared studies with ground_truth.npy under {args.data}")
        return dirs
    from ml.imaging.pipeline import prepare_study
    from ml.synthetic import generate_study

    out = []
    for seed in range(args.data_seed, args.data_seed + args.generate):
        raw = args.work / "synthetic" / f"case_{seed:05d}"
        prepared = args.work / "prepared" / f"case_{seed:05d}"
        if not (prepared / "ground_truth.npy").exists():
            generate_study(raw, seed=seed, grid=args.grid)
            prepare_study(
                raw / "dicom", prepared, grid=args.grid, ground_truth=raw / "ground_truth_ct.nii.gz"
            )
            print(f"prepared {prepared}", flush=True)
        out.append(prepared)
    return out


def _fmt(v: float | None) -> str:
    return "   -  " if v is None else f"{v:6.3f}"


def _median_std(values: list[float | None]) -> tuple[float | None, float | None]:
    import numpy as np

    v = [x for x in values if x is not None]
    if not v:
        return None, None
    return float(np.median(v)), float(np.std(v))


def _cell(values: list[float | None]) -> str:
    med, std = _median_std(values)
    if med is None:
        return "      -       "
    return f"{med:6.3f}" + (f" ({std:.3f})" if len(values) > 1 else "        ")


def run_seed(seed: int, args: argparse.Namespace, train, val, test) -> dict[str, Any]:
    import numpy as np

    from ml.inference.sliding import head_bbox, predict_deepmedic, predict_in_box, predict_unet
    from ml.metrics import aggregate, detection_summary, evaluate_case
    from ml.networks.checkpoint import load_checkpoint, network_from_checkpoint
    from ml.training import (
        DeepMedicTrainConfig,
        EnsembleTrainConfig,
        UNetTrainConfig,
        load_case,
        train_network,
        write_manifest,
    )
    from ml.training.data import read_spacing

    run_dir = args.work / f"seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    train_cases = [load_case(d) for d in train]
    val_cases = [load_case(d) for d in val]

    def config(loss: str) -> EnsembleTrainConfig:
        return EnsembleTrainConfig(
            preset=args.preset,
            seed=seed,
            unet=UNetTrainConfig(
                epochs=args.unet_epochs, steps_per_epoch=args.unet_steps, loss=loss
            ),
            deepmedic=DeepMedicTrainConfig(
                epochs=args.deepmedic_epochs,
                segments_per_epoch=args.deepmedic_segments,
                batch_size=args.deepmedic_batch,
                sampler=args.deepmedic_sampler,
                out_depth=args.deepmedic_out_depth,
                bg_per_fg=args.deepmedic_bg_per_fg,
                segment_dhw=tuple(args.deepmedic_segment),
                loss_margin_dhw=tuple(args.deepmedic_margin),
            ),
        )

    def progress(event: dict[str, Any]) -> None:
        if event["stage"] == "validate":
            v = event["val"]
            print(
                f"  seed {seed} {event['net']:9s} epoch {event['epoch']:3d} loss {event['loss']:.4f} "
                f"val DSC {_fmt(v['dsc'])} recall {_fmt(v['recall'])} small-recall {_fmt(v['small_pixel_recall'])}",
                flush=True,
            )

    runs = {
        "unet_dice": ("unet", config("dice")),
        "unet_voldice": ("unet", config("vol_dice_br")),
        "deepmedic": ("deepmedic", config("vol_dice_br")),
    }
    summaries = {}
    for name, (arch, cfg) in runs.items():
        t0 = time.monotonic()
        summaries[name] = train_network(
            arch,
            cfg,
            train_cases=train_cases,
            val_cases=val_cases,
            out_path=run_dir / f"{name}.pt",
            progress=progress,
            max_minutes=args.minutes_per_net,
            resume=args.resume,
        )
        print(
            f"  seed {seed} {name}: best epoch {summaries[name]['epoch']} of {summaries[name]['epochs_run']} in {time.monotonic() - t0:.0f} s",
            flush=True,
        )

    # Two servable model directories (the ensembles), sharing the DeepMedic weights.
    for variant in ("dice", "voldice"):
        model_dir = run_dir / f"ensemble_{variant}"
        model_dir.mkdir(exist_ok=True)
        shutil.copyfile(run_dir / f"unet_{variant}.pt", model_dir / "unet.pt")
        shutil.copyfile(run_dir / "deepmedic.pt", model_dir / "deepmedic.pt")
        write_manifest(
            model_dir,
            runs[f"unet_{variant}"][1],
            {
                "unet": {**summaries[f"unet_{variant}"], "path": "unet.pt"},
                "deepmedic": {**summaries["deepmedic"], "path": "deepmedic.pt"},
            },
            train_case_ids=[c.case_id for c in train_cases],
            val_case_ids=[c.case_id for c in val_cases],
        )

    nets = {name: network_from_checkpoint(load_checkpoint(run_dir / f"{name}.pt")) for name in runs}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in LABELS}
    threshold = 0.5
    for study in test:
        image = np.load(study / "model_input.npy")
        gt = np.load(study / "ground_truth.npy")
        spacing = read_spacing(study)
        box = head_bbox(image)
        probs = {
            name: predict_in_box(
                (lambda im, n=nets[name]: predict_unet(n, im, stride=4))
                if name.startswith("unet")
                else (lambda im, n=nets[name]: predict_deepmedic(n, im)),
                image,
                box,
            )
            for name in runs
        }
        probs["ensemble_dice"] = (probs["unet_dice"] + probs["deepmedic"]) / 2
        probs["ensemble_voldice"] = (probs["unet_voldice"] + probs["deepmedic"]) / 2
        for name in LABELS:
            r = evaluate_case(probs[name] >= threshold, gt, spacing)
            r["case_id"] = study.name
            results[name].append(r)
    summary = {name: aggregate(r) for name, r in results.items()}
    for name, r in results.items():
        summary[name]["target_100mm3"] = detection_summary(r, 100.0)
    out = {
        "seed": seed,
        "summary": summary,
        "training": {
            k: {kk: v for kk, v in s.items() if kk not in ("history", "val_probs")}
            for k, s in summaries.items()
        },
    }
    (run_dir / "results.json").write_text(json.dumps({**out, "cases": results}, indent=2))
    return out


def print_tables(per_seed: list[dict[str, Any]]) -> None:
    seeds = [r["seed"] for r in per_seed]
    print(
        f"\nTable 3 (paper: private CT+MR data, median (std) over runs; ours: synthetic test set, seeds {seeds}, median (std) over seeds)"
    )
    print(
        f"{'configuration':32s} | {'paper DSC':>9s} {'prec':>6s} {'recall':>6s} | {'our DSC':>14s} {'precision':>14s} {'recall':>14s}"
    )
    for name, label in LABELS.items():
        paper = PAPER_TABLE3[name]
        ours = [
            _cell([r["summary"][name][k] for r in per_seed]) for k in ("dsc", "precision", "recall")
        ]
        print(
            f"{label:32s} | {_fmt(paper[0]):>9s} {_fmt(paper[1])} {_fmt(paper[2])} | {ours[0]:>14s} {ours[1]:>14s} {ours[2]:>14s}"
        )
    print(
        "\nTable 2 (U-Net; small <= 1500 mm3 < large; pixel-wise recall and detection = any voxel predicted)"
    )
    print(
        f"{'group':6s} {'loss':10s} | {'paper pix':>9s} {'det':>6s} | {'n':>4s} {'median mm3':>10s} {'our pix-recall':>14s} {'detection':>14s} {'IoU>=.5 match':>14s}"
    )
    for group in ("small", "large"):
        for name, loss in (("unet_dice", "Dice"), ("unet_voldice", "vol-dice")):
            paper = PAPER_TABLE2[(group, name)]
            g = [r["summary"][name]["groups"][group] for r in per_seed]
            print(
                f"{group:6s} {loss:10s} | {_fmt(paper[0]):>9s} {_fmt(paper[1])} | {g[0]['n_lesions']:4d} {_fmt(g[0]['median_volume_mm3']):>10s} "
                f"{_cell([x['pixel_recall'] for x in g]):>14s} {_cell([x['detection_rate'] for x in g]):>14s} {_cell([x['match_rate'] for x in g]):>14s}"
            )
    print("\nClaims (directions the paper reports), per seed:")
    for r in per_seed:
        s = r["summary"]
        small_d = s["unet_dice"]["groups"]["small"]["pixel_recall"]
        small_v = s["unet_voldice"]["groups"]["small"]["pixel_recall"]
        ok1 = small_d is not None and small_v is not None and small_v > small_d
        print(
            f"  seed {r['seed']}: vol-dice raises small-lesion pixel recall: {'YES' if ok1 else 'NO'} ({_fmt(small_d)} -> {_fmt(small_v)})"
        )
        for variant, unet in (("ensemble_dice", "unet_dice"), ("ensemble_voldice", "unet_voldice")):
            e, u, d = s[variant]["dsc"], s[unet]["dsc"], s["deepmedic"]["dsc"]
            ok2 = e is not None and u is not None and d is not None and e > u and e > d
            print(
                f"  seed {r['seed']}: {LABELS[variant]} beats each net's DSC: {'YES' if ok2 else 'NO'} (ensemble {_fmt(e)}, U-Net {_fmt(u)}, DeepMedic {_fmt(d)})"
            )


def print_target(per_seed: list[dict[str, Any]]) -> None:
    print(
        "\nLite quality target (>= 90% of lesions >= 100 mm3 detected, <= 1 FP lesion per study):"
    )
    for r in per_seed:
        for name, label in LABELS.items():
            t = r["summary"][name]["target_100mm3"]
            ok = (t["detection_rate"] or 0) >= 0.9 and (t["fp_lesions_per_study"] or 0) <= 1
            print(
                f"  seed {r['seed']} {label:30s} detected {t['n_detected']}/{t['n_lesions']} "
                f"({_fmt(t['detection_rate'])}), FP lesions/study {_fmt(t['fp_lesions_per_study'])}: {'MET' if ok else 'not met'}"
            )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ml.cli.experiment", description=__doc__.splitlines()[0]
    )
    p.add_argument("--work", type=Path, default=Path("var/experiment"))
    p.add_argument(
        "--data", type=Path, default=None, help="folder of prepared studies (else generate)"
    )
    p.add_argument(
        "--generate", type=int, default=16, help="synthetic studies to generate without --data"
    )
    p.add_argument("--data-seed", type=int, default=1000, help="first synthetic study seed")
    p.add_argument("--grid", default="tiny", choices=["tiny", "lite", "paper"])
    p.add_argument("--n-train", type=int, default=10)
    p.add_argument("--n-val", type=int, default=2)
    p.add_argument("--n-test", type=int, default=None, help="default: all remaining studies")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--preset", default="lite", choices=["lite", "paper"])
    p.add_argument("--unet-epochs", type=int, default=200)
    p.add_argument("--unet-steps", type=int, default=20)
    p.add_argument("--deepmedic-epochs", type=int, default=100)
    p.add_argument(
        "--deepmedic-segments", type=int, default=32, help="head windows (or segments) per epoch"
    )
    p.add_argument("--deepmedic-batch", type=int, default=2)
    p.add_argument("--deepmedic-sampler", default="head", choices=["head", "segment"])
    p.add_argument(
        "--deepmedic-out-depth", type=int, default=4, help="head windows: output slices in the loss"
    )
    p.add_argument(
        "--deepmedic-bg-per-fg",
        type=lambda v: None if v.lower() == "none" else float(v),
        default=10.0,
        help="head windows: background:tumour loss weight ('none': plain mean)",
    )
    p.add_argument(
        "--deepmedic-segment",
        type=int,
        nargs=3,
        default=[12, 48, 48],
        metavar=("D", "H", "W"),
        help="segment sampler only",
    )
    p.add_argument(
        "--deepmedic-margin",
        type=int,
        nargs=3,
        default=[2, 8, 8],
        metavar=("D", "H", "W"),
        help="segment sampler only",
    )
    p.add_argument(
        "--minutes-per-net", type=float, default=4.0, help="time budget of each of the 3 trainings"
    )
    p.add_argument("--resume", action="store_true")
    p.add_argument(
        "--report-only", action="store_true", help="print tables from saved results.json"
    )
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    dirs = prepared_dirs(args)
    if len(dirs) < args.n_train + args.n_val + 1:
        raise SystemExit(f"need more than {args.n_train + args.n_val} studies, have {len(dirs)}")
    train = dirs[: args.n_train]
    val = dirs[args.n_train : args.n_train + args.n_val]
    rest = dirs[args.n_train + args.n_val :]
    test = rest if args.n_test is None else rest[: args.n_test]
    print(
        f"train {[d.name for d in train]}\nval {[d.name for d in val]}\ntest {[d.name for d in test]}",
        flush=True,
    )
    from ml.metrics import detection_summary

    per_seed = []
    for seed in args.seeds:
        saved = args.work / f"seed{seed}" / "results.json"
        if args.report_only:
            data = json.loads(saved.read_text())
            for name, cases in data["cases"].items():
                data["summary"][name]["target_100mm3"] = detection_summary(cases, 100.0)
            per_seed.append({k: data[k] for k in ("seed", "summary", "training")})
        else:
            per_seed.append(run_seed(seed, args, train, val, test))
    print_tables(per_seed)
    print_target(per_seed)
    (args.work / "summary.json").write_text(json.dumps(per_seed, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
