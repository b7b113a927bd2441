"""A trained ensemble, and each of its networks, on prepared studies with ground truth."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ml.inference import EnsemblePredictor
from ml.metrics import evaluate_case
from ml.training.data import read_spacing

# Each network alone is judged at the paper's threshold; the ensemble by the
# model's own lesion rule (``ml.inference.rule``).
NETWORK_THRESHOLD = 0.5

CaseCallback = Callable[[str, dict[str, Any]], None]


def evaluate_studies(
    predictor: EnsemblePredictor,
    studies: Sequence[Path],
    *,
    on_case: CaseCallback | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Per-case ``evaluate_case`` results of ``unet``, ``deepmedic`` and ``ensemble``.

    Each study is a prepared-study directory with ``model_input.npy`` (2, D, H, W),
    ``ground_truth.npy`` (D, H, W) and ``study.json`` (spacing in mm); every
    result carries its ``case_id`` (the directory name). ``on_case(case_id,
    ensemble_result)`` is called after each study.
    """
    per_net: dict[str, list[dict[str, Any]]] = {"unet": [], "deepmedic": [], "ensemble": []}
    for study in studies:
        gt = np.load(study / "ground_truth.npy")
        spacing = read_spacing(study)
        pred = predictor.predict(np.load(study / "model_input.npy"), spacing)
        t = NETWORK_THRESHOLD
        for name, mask in (
            ("unet", pred.unet_prob >= t),
            ("deepmedic", pred.deepmedic_prob >= t),
            ("ensemble", pred.labels > 0),
        ):
            r = evaluate_case(mask, gt, spacing)
            r["case_id"] = study.name
            per_net[name].append(r)
        if on_case is not None:
            on_case(study.name, per_net["ensemble"][-1])
    return per_net


def fmt_metric(v: Any) -> str:
    """A metric with three decimals, ``n/a`` for ``None``."""
    return "  n/a" if v is None else f"{v:.3f}"


def format_summary(name: str, agg: dict[str, Any]) -> str:
    """One line of an ``ml.metrics.aggregate`` summary: voxel, lesion and size-group metrics."""
    s, g = agg["groups"]["small"], agg["groups"]["large"]
    return (
        f"{name:28s} DSC {fmt_metric(agg['dsc'])}  precision {fmt_metric(agg['precision'])}  recall {fmt_metric(agg['recall'])}  "
        f"detected {fmt_metric(agg['detection_rate'])}  FP lesions/case {fmt_metric(agg['fp_lesions_per_case'])}  "
        f"small n={s['n_lesions']} pix-recall {fmt_metric(s['pixel_recall'])} det {fmt_metric(s['detection_rate'])}  "
        f"large n={g['n_lesions']} pix-recall {fmt_metric(g['pixel_recall'])} det {fmt_metric(g['detection_rate'])}"
    )
