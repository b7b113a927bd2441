"""Evaluate a trained ensemble (or saved masks) on prepared studies with ground truth.

python -m ml.cli.evaluate --model var/models/m1 --studies var/prepared/case_0001* [--json out.json]
python -m ml.cli.evaluate --pred pred_labels.npy --gt ground_truth.npy --spacing 2 1 1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _fmt(v: Any) -> str:
    return "  n/a" if v is None else f"{v:.3f}"


def format_summary(name: str, agg: dict[str, Any]) -> str:
    s, g = agg["groups"]["small"], agg["groups"]["large"]
    return (
        f"{name:28s} DSC {_fmt(agg['dsc'])}  precision {_fmt(agg['precision'])}  recall {_fmt(agg['recall'])}  "
        f"detected {_fmt(agg['detection_rate'])}  FP lesions/case {_fmt(agg['fp_lesions_per_case'])}  "
        f"small n={s['n_lesions']} pix-recall {_fmt(s['pixel_recall'])} det {_fmt(s['detection_rate'])}  "
        f"large n={g['n_lesions']} pix-recall {_fmt(g['pixel_recall'])} det {_fmt(g['detection_rate'])}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ml.cli.evaluate", description=__doc__.splitlines()[0]
    )
    p.add_argument("--model", type=Path, help="model directory")
    p.add_argument(
        "--studies", nargs="*", type=Path, default=[], help="prepared studies with ground_truth.npy"
    )
    p.add_argument("--pred", type=Path, help="predicted mask .npy (nonzero = lesion)")
    p.add_argument("--gt", type=Path, help="ground-truth mask .npy")
    p.add_argument(
        "--spacing", type=float, nargs=3, metavar=("Z", "Y", "X"), help="mm, with --pred/--gt"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, default=None, help="write all per-case results here")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from ml.metrics import aggregate, evaluate_case

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.pred is not None:
        if args.gt is None or args.spacing is None:
            p.error("--pred needs --gt and --spacing")
        result = evaluate_case(np.load(args.pred), np.load(args.gt), tuple(args.spacing))
        result.pop("lesions")
        print(json.dumps(result, indent=2))
        return 0
    if args.model is None or not args.studies:
        p.error("give --model and --studies, or --pred/--gt/--spacing")

    from ml.inference import EnsemblePredictor
    from ml.training.data import read_spacing

    predictor = EnsemblePredictor.from_dir(args.model, device=args.device)
    per_net: dict[str, list[dict[str, Any]]] = {"unet": [], "deepmedic": [], "ensemble": []}
    for study in args.studies:
        gt = np.load(study / "ground_truth.npy")
        spacing = read_spacing(study)
        pred = predictor.predict(np.load(study / "model_input.npy"), spacing)
        t = 0.5  # each network alone at the paper's threshold; the ensemble by the model's rule
        for name, mask in (
            ("unet", pred.unet_prob >= t),
            ("deepmedic", pred.deepmedic_prob >= t),
            ("ensemble", pred.labels > 0),
        ):
            r = evaluate_case(mask, gt, spacing)
            r["case_id"] = study.name
            per_net[name].append(r)
        r = per_net["ensemble"][-1]
        print(
            f"{study.name}: DSC {_fmt(r['dsc'])} lesions gt {r['n_gt_lesions']} pred {r['n_pred_lesions']} detected {r['n_detected']}",
            flush=True,
        )
    summary = {name: aggregate(results) for name, results in per_net.items()}
    for name, agg in summary.items():
        print(format_summary(name, agg))
    if args.json is not None:
        args.json.write_text(json.dumps({"summary": summary, "cases": per_net}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
