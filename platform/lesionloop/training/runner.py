"""The training subprocess: ``python -m lesionloop.training.runner SPEC.json``.

Framework-free on purpose (no Django): the supervisor in ``supervisor.py`` runs
it with a timeout and kills it on cancel, which stops C/CUDA code that a
Dramatiq time limit cannot, and frees GPU memory on exit. torch is imported
inside ``main`` only, so importing this module from the web process is cheap.

Protocol: the spec is a JSON file (written by ``training.services._train``); every line
this process writes to stdout is one JSON event:
``{"type": "progress", ...train_ensemble event...}``, ``{"type": "stage",
"stage": "evaluate"}`` and finally ``{"type": "done", "manifest": ..., "metrics":
..., "baseline_metrics": ...}``. Everything else goes to stderr (the log). The
process exits 0 on success, 3 when cancelled (a ``cancel_file`` appeared) and
nonzero on any failure. All outputs go to ``spec["out_dir"]``, a per-attempt
folder that the supervisor publishes by renaming it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from ml.metrics import json_finite

EXIT_CANCELLED = 3


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, default=_jsonable) + "\n")
    sys.stdout.flush()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def summarise_metrics(aggregate: dict[str, Any], per_case: dict[str, Any]) -> dict[str, Any]:
    """The registry's metric names from an ``ml.metrics.aggregate`` result."""
    small = aggregate["groups"]["small"]
    large = aggregate["groups"]["large"]
    return json_finite(
        {
            "dsc": aggregate["dsc"],
            "precision": aggregate["precision"],
            "recall": aggregate["recall"],
            "small_sensitivity": small["detection_rate"],
            "small_pixel_recall": small["pixel_recall"],
            "small_lesions": small["n_lesions"],
            "large_sensitivity": large["detection_rate"],
            "large_pixel_recall": large["pixel_recall"],
            "large_lesions": large["n_lesions"],
            "fp_per_study": aggregate["fp_lesions_per_case"],
            "n_val_studies": aggregate["n_cases"],
            "per_study": per_case,
        }
    )


def evaluate_model(model_dir: str, cases: list[dict[str, Any]], device: str) -> dict[str, Any]:
    """Score the ensemble in ``model_dir`` on validation cases (prepared dirs with ground truth)."""
    import numpy as np

    from ml.inference import EnsemblePredictor
    from ml.metrics import aggregate, evaluate_case

    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    predictor = EnsemblePredictor.from_dir(model_dir, device=device)
    results, per_case = [], {}
    for case in cases:
        case_dir = Path(case["dir"])
        meta = json.loads((case_dir / "study.json").read_text())
        spacing = tuple(float(s) for s in meta["grid"]["spacing_mm"])
        image = np.load(case_dir / "model_input.npy").astype(np.float32, copy=False)
        gt = np.load(case_dir / "ground_truth.npy") != 0
        prediction = predictor.predict(image, spacing)
        result = evaluate_case(prediction.labels > 0, gt, spacing)
        results.append(result)
        per_case[str(case["study_id"])] = {
            "dsc": result["dsc"],
            "n_gt_lesions": result["n_gt_lesions"],
            "n_detected": result["n_detected"],
            "fp_lesions": result["fp_lesions_any_overlap"],
        }
    return summarise_metrics(aggregate(results), per_case)


def run(spec: dict[str, Any]) -> int:
    from ml.training import EnsembleTrainConfig, TrainingCancelled, train_ensemble

    out_dir = Path(spec["out_dir"])
    cancel_file = Path(spec["cancel_file"])
    config = EnsembleTrainConfig.from_dict(spec["config"])
    config.validate()
    train = spec["train_cases"]
    val = spec["val_cases"]

    parent = os.getppid()

    def should_stop() -> bool:
        # Stop when asked, or when the supervising worker died (we were re-parented):
        # nobody would publish the result, and the GPU should be free again.
        return cancel_file.exists() or os.getppid() != parent

    try:
        manifest = train_ensemble(
            config,
            train_dirs=[c["dir"] for c in train],
            val_dirs=[c["dir"] for c in val],
            out_dir=out_dir,
            warm_start_dir=spec.get("warm_start_dir"),
            progress=lambda event: _emit({"type": "progress", **json_finite(event)}),
            should_stop=should_stop,
        )
    except TrainingCancelled:
        return EXIT_CANCELLED
    _emit({"type": "stage", "stage": "evaluate"})
    metrics = evaluate_model(str(out_dir), val, config.device) if val else {}
    baseline = None
    if spec.get("baseline_dir") and val:
        if should_stop():
            return EXIT_CANCELLED
        # The version to beat, scored on exactly the same validation studies.
        baseline = evaluate_model(spec["baseline_dir"], val, config.device)
    _emit(
        {
            "type": "done",
            "manifest": {k: manifest[k] for k in ("files", "preset", "seed", "config")},
            "metrics": metrics,
            "baseline_metrics": baseline,
        }
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m lesionloop.training.runner SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(args[0]).read_text())
    threads = spec.get("torch_threads")
    if threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        import torch

        torch.set_num_threads(int(threads))
    return run(spec)


if __name__ == "__main__":
    sys.exit(main())
