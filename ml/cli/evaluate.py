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


def build_parser() -> argparse.ArgumentParser:
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
    return p


def evaluate_masks(args: argparse.Namespace) -> int:
    """``--pred/--gt/--spacing``: one case's metrics as JSON (without the lesion list)."""
    import numpy as np

    from ml.metrics import evaluate_case

    result = evaluate_case(np.load(args.pred), np.load(args.gt), tuple(args.spacing))
    result.pop("lesions")
    print(json.dumps(result, indent=2))
    return 0


def evaluate_model(args: argparse.Namespace) -> int:
    """``--model/--studies``: a line per study, a summary line per network, optional JSON."""
    from ml.evaluation import evaluate_studies, format_summary
    from ml.evaluation.studies import fmt_metric
    from ml.inference import EnsemblePredictor
    from ml.metrics import aggregate

    def report_case(case_id: str, r: dict[str, Any]) -> None:
        print(
            f"{case_id}: DSC {fmt_metric(r['dsc'])} lesions gt {r['n_gt_lesions']} pred {r['n_pred_lesions']} detected {r['n_detected']}",
            flush=True,
        )

    predictor = EnsemblePredictor.from_dir(args.model, device=args.device)
    per_net = evaluate_studies(predictor, args.studies, on_case=report_case)
    summary = {name: aggregate(results) for name, results in per_net.items()}
    for name, agg in summary.items():
        print(format_summary(name, agg))
    if args.json is not None:
        args.json.write_text(json.dumps({"summary": summary, "cases": per_net}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.pred is not None:
        if args.gt is None or args.spacing is None:
            p.error("--pred needs --gt and --spacing")
        return evaluate_masks(args)
    if args.model is None or not args.studies:
        p.error("give --model and --studies, or --pred/--gt/--spacing")
    return evaluate_model(args)


if __name__ == "__main__":
    sys.exit(main())
