"""Train the U-Net + DeepMedic ensemble on prepared studies.

python -m ml.cli.train --train var/prepared/case_* --val var/prepared/case_9 --out var/models/m1 \
    --preset lite --unet-epochs 20 --deepmedic-epochs 10 --max-minutes 10
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ml.cli.train", description=__doc__.splitlines()[0])
    p.add_argument(
        "--train",
        nargs="+",
        type=Path,
        required=True,
        help="prepared-study dirs with ground_truth.npy",
    )
    p.add_argument("--val", nargs="*", type=Path, default=[], help="validation prepared-study dirs")
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="EnsembleTrainConfig JSON; flags below override it",
    )
    p.add_argument("--preset", choices=["paper", "lite"], default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--loss", choices=["dice", "vol_dice_br", "vol_dice_cr"], default=None)
    p.add_argument("--lambda-c", type=float, default=None, help="voxels, for vol_dice_cr")
    p.add_argument("--unet-epochs", type=int, default=None)
    p.add_argument("--unet-steps", type=int, default=None, help="slabs per U-Net epoch")
    p.add_argument("--deepmedic-epochs", type=int, default=None)
    p.add_argument(
        "--deepmedic-segments", type=int, default=None, help="segments per DeepMedic epoch"
    )
    p.add_argument(
        "--max-minutes", type=float, default=None, help="wall-clock budget for the whole run"
    )
    p.add_argument("--warm-start", type=Path, default=None, help="model directory to start from")
    p.add_argument("--resume", action="store_true", help="continue from *.last.pt in --out")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="print epoch lines only, not every step")
    return p


def config_from_args(args: argparse.Namespace):
    from ml.training import EnsembleTrainConfig

    cfg = EnsembleTrainConfig.from_json(args.config) if args.config else EnsembleTrainConfig()
    for attr, value in (
        ("preset", args.preset),
        ("seed", args.seed),
        ("device", args.device),
        ("max_minutes", args.max_minutes),
    ):
        if value is not None:
            setattr(cfg, attr, value)
    for obj, attr, value in (
        (cfg.unet, "loss", args.loss),
        (cfg.unet, "lambda_c", args.lambda_c),
        (cfg.unet, "epochs", args.unet_epochs),
        (cfg.unet, "steps_per_epoch", args.unet_steps),
        (cfg.deepmedic, "epochs", args.deepmedic_epochs),
        (cfg.deepmedic, "segments_per_epoch", args.deepmedic_segments),
    ):
        if value is not None:
            setattr(obj, attr, value)
    cfg.validate()
    return cfg


def print_progress(quiet: bool):
    t0 = time.monotonic()

    def progress(event: dict) -> None:
        elapsed = time.monotonic() - t0
        if event["stage"] == "calibrate":
            print(f"[{elapsed:7.1f}s] operating point: {event['message']}", flush=True)
        elif event["stage"] == "validate":
            val = " ".join(f"{k}={v:.3f}" for k, v in event["val"].items() if isinstance(v, float))
            print(
                f"[{elapsed:7.1f}s] {event['net']:9s} epoch {event['epoch']}/{event['epochs']} loss={event['loss']:.4f} val: {val}",
                flush=True,
            )
        elif not quiet or event["step"] == event["steps"]:
            print(
                f"[{elapsed:7.1f}s] {event['stage']:9s} epoch {event['epoch']}/{event['epochs']} "
                f"step {event['step']}/{event['steps']} loss={event['loss']:.4f}",
                flush=True,
            )

    return progress


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    from ml.training import TrainingCancelled, train_ensemble

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = config_from_args(args)
    print(f"config: {cfg.to_json()}", flush=True)
    try:
        manifest = train_ensemble(
            cfg,
            train_dirs=args.train,
            val_dirs=args.val,
            out_dir=args.out,
            warm_start_dir=args.warm_start,
            progress=print_progress(args.quiet),
            resume=args.resume,
        )
    except TrainingCancelled as exc:
        print(f"cancelled: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {"out": str(args.out), "files": manifest["files"], "metrics": manifest["metrics"]},
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
