"""Learning curves of the annotation loop against honest baselines.

python benchmarks/loop_simulation.py --work /tmp/loopsim [--grid tiny] [--pool 14]
    [--val 2] [--test 6] [--data-seed 700] [--seeds 1 2 3]
    [--strategies priority random foreground] [--initial 2] [--per-round 2]
    [--rounds 4] [--unet-epochs 4] [--plot docs/img/loop_curves.png]

Replays the loop (``ml.evaluation.loop_simulation``) for each strategy and seed
on the same synthetic studies, prints one line per round and a table of the
mean and range over seeds, writes ``<work>/curves.json`` and, with ``--plot``, a
PNG of DSC, small-lesion sensitivity, FP per study and review effort against
the number of reviewed studies (mean line, min-max band over seeds).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))  # priority score

import argparse
import json
import time
from typing import Any

import numpy as np

from lesionloop.studies.priority import review_priority  # noqa: E402
from ml.evaluation.experiment import prepare_synthetic  # noqa: E402
from ml.evaluation.loop_simulation import (  # noqa: E402
    STRATEGIES,
    SimulationConfig,
    Studies,
    simulate,
)

METRICS = ("dsc", "small_sensitivity", "fp_per_study", "effort_voxels")


def effort_voxels(row: dict[str, Any]) -> float | None:
    e = row["effort"]
    return e["voxels_added"] + e["voxels_removed"] if e else None


def curves(results: dict[str, dict[int, list[dict[str, Any]]]]) -> dict[str, Any]:
    """Per strategy and metric: x (studies reviewed), mean, min, max over seeds."""
    out: dict[str, Any] = {}
    for strategy, by_seed in results.items():
        runs = list(by_seed.values())
        x = [row["n_reviewed"] for row in runs[0]]
        out[strategy] = {"x": x}
        for m in METRICS:
            vals = np.array(
                [
                    [
                        np.nan
                        if (v := (effort_voxels(row) if m == "effort_voxels" else row[m])) is None
                        else v
                        for row in run
                    ]
                    for run in runs
                ],
                dtype=float,
            )
            with np.errstate(all="ignore"):
                out[strategy][m] = {
                    "mean": np.nanmean(vals, axis=0).tolist(),
                    "min": np.nanmin(vals, axis=0).tolist(),
                    "max": np.nanmax(vals, axis=0).tolist(),
                }
    return out


def print_table(c: dict[str, Any]) -> None:
    for m in METRICS:
        print(f"\n{m} (mean [min, max] over seeds) by studies reviewed")
        for strategy, data in c.items():
            cells = [
                f"{n:2d}: {mu:.3f} [{lo:.3f}, {hi:.3f}]"
                for n, mu, lo, hi in zip(
                    data["x"], data[m]["mean"], data[m]["min"], data[m]["max"], strict=True
                )
                if not np.isnan(mu)
            ]
            print(f"  {strategy:10s} " + "  ".join(cells))


def plot(c: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {
        "dsc": "test DSC",
        "small_sensitivity": "sensitivity, lesions 20-500 mm3",
        "fp_per_study": "FP lesions per test study",
        "effort_voxels": "voxels changed per round (review effort)",
    }
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    for ax, m in zip(axes, METRICS, strict=True):
        for strategy, data in c.items():
            x = np.array(data["x"])
            mu, lo, hi = (np.array(data[m][k]) for k in ("mean", "min", "max"))
            ok = ~np.isnan(mu)
            ax.plot(x[ok], mu[ok], marker="o", label=strategy)
            ax.fill_between(x[ok], lo[ok], hi[ok], alpha=0.2)
        ax.set_xlabel("studies reviewed")
        ax.set_title(labels[m], fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


def save(args: argparse.Namespace, results: dict[str, dict[int, list[dict[str, Any]]]]) -> None:
    """``<work>/curves.json``: the options, every run's rows and the curves so far."""
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    data = {"config": config, "results": results, "curves": curves(results)}
    (args.work / "curves.json").write_text(json.dumps(data, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--grid", default="tiny")
    p.add_argument("--pool", type=int, default=14)
    p.add_argument("--val", type=int, default=2)
    p.add_argument("--test", type=int, default=6)
    p.add_argument("--data-seed", type=int, default=700)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    p.add_argument("--initial", type=int, default=2)
    p.add_argument("--per-round", type=int, default=2)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--unet-epochs", type=int, default=4)
    p.add_argument("--unet-steps", type=int, default=4)
    p.add_argument("--deepmedic-epochs", type=int, default=2)
    p.add_argument("--plot", type=Path)
    args = p.parse_args()
    t0 = time.monotonic()
    n = args.pool + args.val + args.test
    dirs = prepare_synthetic(args.work, args.grid, args.data_seed, n, lambda s: None)
    studies = Studies(
        pool=dirs[: args.pool],
        validation=dirs[args.pool : args.pool + args.val],
        test=dirs[args.pool + args.val :],
    )
    print(f"{n} studies prepared in {time.monotonic() - t0:.0f} s", flush=True)
    config = SimulationConfig(
        grid=args.grid,
        initial=args.initial,
        per_round=args.per_round,
        rounds=args.rounds,
        unet_epochs=args.unet_epochs,
        unet_steps=args.unet_steps,
        deepmedic_epochs=args.deepmedic_epochs,
    )
    results: dict[str, dict[int, list[dict[str, Any]]]] = {}
    runs = [
        (s, seed) for seed in args.seeds for s in args.strategies
    ]  # every strategy per seed first
    for i, (strategy, seed) in enumerate(runs):
        t = time.monotonic()
        rows = simulate(
            config,
            studies,
            strategy,
            seed,
            args.work / "runs",
            review_priority,
            log=lambda line: print(line, flush=True),
        )
        results.setdefault(strategy, {})[seed] = rows
        save(args, results)  # partial results survive an interrupted run
        spent = time.monotonic() - t0
        left = (time.monotonic() - t) * (len(runs) - i - 1)
        print(
            f"[{i + 1}/{len(runs)}] elapsed {spent / 60:.1f} min, ~{left / 60:.1f} min left",
            flush=True,
        )
    c = curves(results)
    print_table(c)
    if args.plot:
        title = (
            f"{args.grid} grid, pool {args.pool}, test {args.test}, {args.initial} + {args.per_round}/round, "
            f"seeds {args.seeds}, data seed {args.data_seed}"
        )
        plot(c, args.plot, title)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
