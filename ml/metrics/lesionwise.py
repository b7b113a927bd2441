"""Lesion-wise scores per size group, and the BraTS-METS style lesion-wise block.

Size groups (``SIZE_GROUPS``, ground-truth volume in mm^3): ``<100``, ``100-500``,
``500-1500``, ``>1500``; a volume ``v`` is in the group with ``lo <= v < hi``, except
that 1500 itself belongs to ``500-1500`` (the paper's small group is ``<= 1500``).

Per case (``lesionwise_case``), with 26-connected components of each mask:

- every ground-truth lesion ``g``: ``detected`` when any of its voxels is predicted (the
  paper's rule, docs/METHOD.md section 4); ``dice`` = ``2 |g & P_g| / (|g| + |P_g|)``
  where ``P_g`` is the union of the predicted components that touch ``g`` (0 when
  missed): the lesion-wise Dice;
- every predicted component touching no ground truth is a false-positive lesion, put in
  the size group of its own volume;
- ``brats``: one-to-one matching at component IoU >= ``iou_threshold`` (0.5), as
  ``panoptica``'s ``NaiveThresholdMatching(Metric.IOU, 0.5)`` does: ``tp`` (matched
  pairs), ``fn``, ``fp``, ``sensitivity = tp / (tp + fn)``, ``precision = tp / (tp +
  fp)``, ``f1`` (panoptica's recognition quality ``rq``), ``sq_dsc`` (mean Dice of the
  matched pairs, panoptica's ``sq_dsc``), ``pq_dsc = sq_dsc * f1`` and
  ``lesionwise_dice = sum(matched Dice) / (tp + fn + fp)`` (BraTS-METS 2023: every
  missed and every false-positive lesion scores 0). BraTS also dilates ground-truth
  lesions before matching; we do not, so the numbers compare with panoptica's plain
  matching (tests/ml_tests/metrics/test_lesionwise.py checks the agreement).

``size_group_summary`` pools cases: per group ``n_lesions``, ``n_detected``,
``sensitivity``, ``fp_lesions``, ``fp_per_study``, ``lesion_dice`` (mean over the group's
ground-truth lesions) and ``brats`` pooled over all cases. Empty groups give ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ml.lesions import label_lesions, voxel_volume_mm3
from ml.metrics.case import _component_iou, _match_greedy, _overlap_table

SIZE_GROUPS: tuple[tuple[str, float, float], ...] = (
    ("<100", 0.0, 100.0),
    ("100-500", 100.0, 500.0),
    ("500-1500", 500.0, 1500.0),
    (">1500", 1500.0, math.inf),
)
GROUP_NAMES = tuple(name for name, _, _ in SIZE_GROUPS)


def size_group(volume_mm3: float) -> str:
    """The size group of a lesion of ``volume_mm3`` (1500 itself is ``500-1500``)."""
    if volume_mm3 == 1500.0:
        return "500-1500"
    for name, lo, hi in SIZE_GROUPS:
        if lo <= volume_mm3 < hi:
            return name
    raise ValueError(f"volume_mm3 must be a finite number >= 0, got {volume_mm3!r}")


def study_stratum(gt_mask: np.ndarray, spacing_mm: Sequence[float]) -> str:
    """A study's size stratum: the group of its smallest lesion, ``none`` without one
    (small lesions are what the method is for, so a study counts where its hardest
    lesion lies)."""
    labels, n = label_lesions(gt_mask != 0, 26)
    if n == 0:
        return "none"
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    return size_group(float(sizes.min()) * voxel_volume_mm3(spacing_mm))


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else float(num) / float(den)


def _brats_block(tp: int, fn: int, fp: int, matched_dice: Sequence[float]) -> dict[str, Any]:
    sq = float(np.mean(matched_dice)) if matched_dice else None
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return {
        "tp": tp,
        "fn": fn,
        "fp": fp,
        "sensitivity": _ratio(tp, tp + fn),
        "precision": _ratio(tp, tp + fp),
        "f1": f1,
        "sq_dsc": sq,
        "pq_dsc": None if sq is None or f1 is None else sq * f1,
        "lesionwise_dice": _ratio(float(sum(matched_dice)), tp + fn + fp),
    }


def lesionwise_case(
    pred_mask: np.ndarray,
    gt_mask: np.ndarray,
    spacing_mm: Sequence[float],
    *,
    connectivity: int = 26,
    iou_threshold: float = 0.5,
) -> dict[str, Any]:
    """Lesion-wise records of one case; masks (D, H, W), nonzero = lesion, spacing mm.

    Returns ``{"gt_lesions": [{volume_mm3, group, detected, dice, matched,
    matched_dice}], "fp_lesions": [{volume_mm3, group}], "brats": {...}}``.
    """
    if pred_mask.shape != gt_mask.shape:
        raise ValueError(f"pred shape {pred_mask.shape} != gt shape {gt_mask.shape}")
    vox_mm3 = voxel_volume_mm3(spacing_mm)
    overlap, n_gt, n_pred = _overlap_table(gt_mask != 0, pred_mask != 0, connectivity)
    iou = _component_iou(overlap)
    matched, used = _match_greedy(iou, iou_threshold)
    gt_sizes, pred_sizes = overlap.sum(axis=1), overlap.sum(axis=0)
    gt_rows = []
    for i in range(1, n_gt + 1):
        touching = np.flatnonzero(overlap[i, 1:]) + 1
        inter = int(overlap[i, touching].sum())
        union_pred = int(pred_sizes[touching].sum())
        pair = matched.get(i - 1)
        matched_dice = None
        if pair is not None:
            j = pair[0]
            matched_dice = 2.0 * overlap[i, j] / (gt_sizes[i] + pred_sizes[j])
        gt_rows.append(
            {
                "volume_mm3": float(gt_sizes[i] * vox_mm3),
                "group": size_group(float(gt_sizes[i] * vox_mm3)),
                "detected": inter > 0,
                "dice": 2.0 * inter / (int(gt_sizes[i]) + union_pred),
                "matched": pair is not None,
                "matched_dice": None if matched_dice is None else float(matched_dice),
            }
        )
    fp_rows = [
        {"volume_mm3": float(pred_sizes[j] * vox_mm3), "group": size_group(pred_sizes[j] * vox_mm3)}
        for j in range(1, n_pred + 1)
        if n_gt == 0 or overlap[1:, j].sum() == 0
    ]
    dices = [r["matched_dice"] for r in gt_rows if r["matched_dice"] is not None]
    tp = len(matched)
    brats = _brats_block(tp, n_gt - tp, n_pred - len(used), dices)
    return {"gt_lesions": gt_rows, "fp_lesions": fp_rows, "brats": brats}


def size_group_summary(cases: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pool ``lesionwise_case`` results: per size group and overall, plus ``brats``."""
    n_cases = len(cases)
    gt = [les for c in cases for les in c["gt_lesions"]]
    fp = [les for c in cases for les in c["fp_lesions"]]

    def block(members: list[dict[str, Any]], fps: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "n_lesions": len(members),
            "n_detected": sum(m["detected"] for m in members),
            "sensitivity": _ratio(sum(m["detected"] for m in members), len(members)),
            "fp_lesions": len(fps),
            "fp_per_study": _ratio(len(fps), n_cases),
            "lesion_dice": float(np.mean([m["dice"] for m in members])) if members else None,
        }

    groups = {
        name: block([m for m in gt if m["group"] == name], [f for f in fp if f["group"] == name])
        for name in GROUP_NAMES
    }
    tp = sum(c["brats"]["tp"] for c in cases)
    fn = sum(c["brats"]["fn"] for c in cases)
    n_fp = sum(c["brats"]["fp"] for c in cases)
    dices = [les["matched_dice"] for les in gt if les["matched_dice"] is not None]
    return {
        "n_studies": n_cases,
        "groups": groups,
        "overall": block(gt, fp),
        "brats": _brats_block(tp, fn, n_fp, dices),
    }
