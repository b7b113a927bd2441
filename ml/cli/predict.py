"""Segment brain metastases in one prepared study with a trained ensemble.

python -m ml.cli.predict --model var/models/m1 --study var/prepared/case_00003 --out var/pred/case_00003
Writes ensemble_prob.npy, unet_prob.npy, deepmedic_prob.npy, labels.npy and lesions.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ml.cli.predict", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "--model",
        type=Path,
        required=True,
        help="model directory (manifest.json, unet.pt, deepmedic.pt)",
    )
    p.add_argument("--study", type=Path, required=True, help="prepared-study directory")
    p.add_argument(
        "--out", type=Path, default=None, help="where to write the maps and lesions.json"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--threshold", type=float, default=None, help="override the model's threshold")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from ml.inference import EnsemblePredictor
    from ml.training.data import read_spacing

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {} if args.threshold is None else {"threshold": args.threshold}
    predictor = EnsemblePredictor.from_dir(args.model, device=args.device, **overrides)
    model_input = np.load(args.study / "model_input.npy")
    spacing = read_spacing(args.study)
    t0 = time.monotonic()
    pred = predictor.predict(model_input, spacing)
    seconds = time.monotonic() - t0
    lesions = [les.to_dict() for les in pred.lesions]
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for name in ("ensemble_prob", "unet_prob", "deepmedic_prob", "labels"):
            np.save(args.out / f"{name}.npy", getattr(pred, name))
        (args.out / "lesions.json").write_text(
            json.dumps(
                {"spacing_mm": list(spacing), "threshold": pred.threshold, "lesions": lesions},
                indent=2,
            )
        )
    print(
        f"{len(lesions)} lesions in {seconds:.1f} s (shape {model_input.shape[1:]}, spacing {spacing})"
    )
    for les in lesions:
        print(
            f"  #{les['label']:<3d} {les['volume_mm3']:9.1f} mm3  centroid_vox {tuple(round(c, 1) for c in les['centroid_vox'])}  "
            f"mean_prob {les['mean_prob']:.2f}  disagreement {les['disagreement']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
