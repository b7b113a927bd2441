"""Reproduce the paper's comparisons on synthetic data: U-Net with Dice vs
volume-aware Dice (BR) from the same seed on the same cases, DeepMedic, and the
two ensembles; print the paper's Tables 2 and 3 beside ours.

python -m ml.cli.experiment --work var/experiment --generate 16 --grid tiny --minutes-per-net 4
python -m ml.cli.experiment --work var/experiment --data var/prepared_tiny --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
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
    return p


def _print(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    import torch

    from ml.evaluation.experiment import (
        ExperimentSettings,
        list_prepared,
        load_seed,
        prepare_synthetic,
        run_seed,
    )
    from ml.evaluation.paper_tables import table_lines, target_lines

    torch.set_num_threads(args.threads)
    try:
        dirs = (
            list_prepared(args.data)
            if args.data is not None
            else prepare_synthetic(args.work, args.grid, args.data_seed, args.generate, _print)
        )
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    if len(dirs) < args.n_train + args.n_val + 1:
        raise SystemExit(f"need more than {args.n_train + args.n_val} studies, have {len(dirs)}")
    train = dirs[: args.n_train]
    val = dirs[args.n_train : args.n_train + args.n_val]
    rest = dirs[args.n_train + args.n_val :]
    test = rest if args.n_test is None else rest[: args.n_test]
    _print(
        f"train {[d.name for d in train]}\nval {[d.name for d in val]}\ntest {[d.name for d in test]}"
    )
    # The CLI's options are the settings' fields (lists of sizes become tuples).
    values = {f.name: getattr(args, f.name) for f in fields(ExperimentSettings)}
    settings = ExperimentSettings(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    )
    per_seed = [
        load_seed(args.work, seed)
        if args.report_only
        else run_seed(seed, settings, (train, val, test), _print)
        for seed in args.seeds
    ]
    for line in table_lines(per_seed) + target_lines(per_seed):
        print(line)
    (args.work / "summary.json").write_text(json.dumps(per_seed, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
