"""A model version scored on the gate set: the registry's metrics plus per size group.

``score_model(model_dir, cases, device)`` runs ``EnsemblePredictor`` (the model's own
lesion rule) on each case, a prepared-study directory with ``ground_truth.npy`` and
``study.json``, and returns a JSON-ready dict:

- ``dsc``, ``precision``, ``recall``, ``small_sensitivity`` / ``large_sensitivity``
  (paper's any-overlap detection, split at 1500 mm3), ``fp_per_study``: the names the
  promotion rule reads (``ml.metrics.aggregate``);
- ``size_groups``: per group (``<100``, ``100-500``, ``500-1500``, ``>1500`` mm3) lesion
  sensitivity, FP lesions per study and lesion-wise Dice; ``brats``: the BraTS-METS style
  lesion-wise block (``ml.metrics.lesionwise``);
- ``n_studies``, ``n_lesions``, ``per_study`` ({study id: dsc, lesions, detected, fp}).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ml.metrics import aggregate, evaluate_case, json_finite
from ml.metrics.lesionwise import lesionwise_case, size_group_summary


def summarise(
    voxel_cases: list[dict[str, Any]], lesion_cases: list[dict[str, Any]], ids: list[str]
) -> dict[str, Any]:
    """The gate metrics from per-case ``evaluate_case`` and ``lesionwise_case`` results."""
    agg = aggregate(voxel_cases)
    small, large = agg["groups"]["small"], agg["groups"]["large"]
    groups = size_group_summary(lesion_cases)
    return json_finite(
        {
            "dsc": agg["dsc"],
            "precision": agg["precision"],
            "recall": agg["recall"],
            "small_sensitivity": small["detection_rate"],
            "small_lesions": small["n_lesions"],
            "large_sensitivity": large["detection_rate"],
            "large_lesions": large["n_lesions"],
            "fp_per_study": agg["fp_lesions_per_case"],
            "n_studies": agg["n_cases"],
            "n_lesions": agg["n_gt_lesions"],
            "size_groups": groups["groups"],
            "brats": groups["brats"],
            "per_study": {
                sid: {
                    "dsc": c["dsc"],
                    "n_gt_lesions": c["n_gt_lesions"],
                    "n_detected": c["n_detected"],
                    "fp_lesions": c["fp_lesions_any_overlap"],
                }
                for sid, c in zip(ids, voxel_cases, strict=True)
            },
        }
    )


def score_model(model_dir: str, cases: list[dict[str, Any]], device: str = "cpu") -> dict[str, Any]:
    """Score the ensemble in ``model_dir`` on ``cases`` (``[{"study_id", "dir"}]``).

    Raises ``FileNotFoundError`` when a case or the model is missing (a gate set member's
    snapshot must exist: the set never silently shrinks).
    """
    from ml.inference import EnsemblePredictor

    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    predictor = EnsemblePredictor.from_dir(model_dir, device=device)
    voxel_cases, lesion_cases, ids = [], [], []
    for case in cases:
        case_dir = Path(case["dir"])
        meta = json.loads((case_dir / "study.json").read_text())
        spacing = tuple(float(s) for s in meta["grid"]["spacing_mm"])
        image = np.load(case_dir / "model_input.npy").astype(np.float32, copy=False)
        gt = np.load(case_dir / "ground_truth.npy") != 0
        pred = predictor.predict(image, spacing).labels > 0
        voxel_cases.append(evaluate_case(pred, gt, spacing))
        lesion_cases.append(lesionwise_case(pred, gt, spacing))
        ids.append(str(case["study_id"]))
    return summarise(voxel_cases, lesion_cases, ids)
