"""Per-case metrics and their aggregation over a data set.

Conventions for empty masks (chosen so that no case is silently dropped):

- DSC is 1.0 when both masks are empty, 0.0 when exactly one is.
- Precision is ``None`` when nothing is predicted; recall is ``None`` when the
  ground truth is empty (0/0 is undefined). ``aggregate`` averages over the
  cases where the value is defined and says how many that were.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ml.lesions import label_lesions, voxel_volume_mm3

SMALL_LESION_MAX_MM3 = 1500.0


def json_finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float (also inside dicts, lists and tuples)
    replaced by None: they are not JSON, and a metric that is undefined reads as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_finite(v) for v in value]
    return value


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else float(num) / float(den)


def _overlap_table(
    gt: np.ndarray, pred: np.ndarray, connectivity: int
) -> tuple[np.ndarray, int, int]:
    """Voxel counts shared by ground-truth and predicted components.

    ``gt`` and ``pred`` are boolean (D, H, W). Returns ``(overlap, n_gt, n_pred)``:
    ``overlap`` is int64 (n_gt + 1, n_pred + 1), row/column 0 the background, so
    ``overlap[i, j]`` is the number of voxels in gt lesion i and predicted lesion j.
    """
    gt_labels, n_gt_les = label_lesions(gt, connectivity)
    pred_labels, n_pred_les = label_lesions(pred, connectivity)
    pair = gt_labels.astype(np.int64) * (n_pred_les + 1) + pred_labels
    overlap = np.bincount(pair.ravel(), minlength=(n_gt_les + 1) * (n_pred_les + 1)).reshape(
        n_gt_les + 1, n_pred_les + 1
    )
    return overlap, n_gt_les, n_pred_les


def _component_iou(overlap: np.ndarray) -> np.ndarray:
    """IoU of each (gt lesion, predicted lesion) pair, float64 (n_gt, n_pred)."""
    gt_sizes = overlap.sum(axis=1)
    pred_sizes = overlap.sum(axis=0)
    inter = overlap[1:, 1:].astype(np.float64)
    union = gt_sizes[1:, None] + pred_sizes[None, 1:] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _match_greedy(
    iou: np.ndarray, iou_threshold: float
) -> tuple[dict[int, tuple[int, float]], set[int]]:
    """One-to-one matching, greedy by IoU: optimal whenever IoU > 0.5, since a
    component can then overlap only one partner that much.

    Returns ``{gt index (0-based): (pred label (1-based), IoU)}`` and the set of
    matched predicted indices (0-based).
    """
    matched_gt: dict[int, tuple[int, float]] = {}
    used_pred: set[int] = set()
    if iou.size:
        for flat in np.argsort(-iou, axis=None, kind="stable"):
            i, j = np.unravel_index(flat, iou.shape)
            if iou[i, j] < iou_threshold or iou[i, j] <= 0:
                break
            if int(i) in matched_gt or int(j) in used_pred:
                continue
            matched_gt[int(i)] = (int(j) + 1, float(iou[i, j]))
            used_pred.add(int(j))
    return matched_gt, used_pred


def _lesion_rows(
    overlap: np.ndarray,
    iou: np.ndarray,
    matched_gt: dict[int, tuple[int, float]],
    vox_mm3: float,
    small_max_mm3: float,
) -> list[dict[str, Any]]:
    """One record per ground-truth lesion: size (voxels, mm^3), group, hits, best IoU."""
    n_gt_les, n_pred_les = overlap.shape[0] - 1, overlap.shape[1] - 1
    gt_sizes = overlap.sum(axis=1)
    lesions = []
    for i in range(n_gt_les):
        size = int(gt_sizes[i + 1])
        hit = int(size - overlap[i + 1, 0])
        volume_mm3 = size * vox_mm3
        lesions.append(
            {
                "label": i + 1,
                "volume_vox": size,
                "volume_mm3": volume_mm3,
                "group": "small" if volume_mm3 <= small_max_mm3 else "large",
                "tp_vox": hit,
                "pixel_recall": hit / size,
                "detected": hit > 0,
                "best_iou": float(iou[i].max()) if n_pred_les else 0.0,
                "matched": i in matched_gt,
            }
        )
    return lesions


def _group_rows(lesions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per size group ("small", "large"): lesion counts, voxels and rates."""
    groups = {}
    for name in ("small", "large"):
        members = [les for les in lesions if les["group"] == name]
        voxels = sum(les["volume_vox"] for les in members)
        groups[name] = {
            "n_lesions": len(members),
            "n_detected": sum(les["detected"] for les in members),
            "n_matched": sum(les["matched"] for les in members),
            "gt_vox": voxels,
            "tp_vox": sum(les["tp_vox"] for les in members),
            "detection_rate": _ratio(sum(les["detected"] for les in members), len(members)),
            "pixel_recall": _ratio(sum(les["tp_vox"] for les in members), voxels),
        }
    return groups


def _voxel_scores(pred: np.ndarray, gt: np.ndarray, vox_mm3: float) -> dict[str, Any]:
    """Voxel-wise DSC, precision, recall, TP/FP/FN counts and volumes (mm^3)."""
    tp = int(np.count_nonzero(pred & gt))
    n_pred, n_gt = int(np.count_nonzero(pred)), int(np.count_nonzero(gt))
    return {
        "dsc": 1.0 if n_pred + n_gt == 0 else 2.0 * tp / (n_pred + n_gt),
        "precision": _ratio(tp, n_pred),
        "recall": _ratio(tp, n_gt),
        "tp_vox": tp,
        "fp_vox": n_pred - tp,
        "fn_vox": n_gt - tp,
        "pred_volume_mm3": n_pred * vox_mm3,
        "gt_volume_mm3": n_gt * vox_mm3,
    }


def evaluate_case(
    pred_mask: np.ndarray,
    gt_mask: np.ndarray,
    spacing_mm: Sequence[float],
    *,
    connectivity: int = 26,
    small_max_mm3: float = SMALL_LESION_MAX_MM3,
    iou_threshold: float = 0.5,
) -> dict[str, Any]:
    """Metrics of one case. Masks are (D, H, W), nonzero = lesion; spacing (z, y, x) mm."""
    if pred_mask.shape != gt_mask.shape:
        raise ValueError(f"pred shape {pred_mask.shape} != gt shape {gt_mask.shape}")
    vox_mm3 = voxel_volume_mm3(spacing_mm)
    pred = pred_mask != 0
    gt = gt_mask != 0
    overlap, n_gt_les, n_pred_les = _overlap_table(gt, pred, connectivity)
    iou = _component_iou(overlap)
    matched_gt, used_pred = _match_greedy(iou, iou_threshold)
    lesions = _lesion_rows(overlap, iou, matched_gt, vox_mm3, small_max_mm3)
    fp_any = int(np.count_nonzero(overlap[1:, 1:].sum(axis=0) == 0)) if n_pred_les else 0
    if n_gt_les == 0:
        fp_any = n_pred_les
    return {
        "spacing_mm": [float(s) for s in spacing_mm],
        **_voxel_scores(pred, gt, vox_mm3),
        "n_gt_lesions": n_gt_les,
        "n_pred_lesions": n_pred_les,
        "n_detected": sum(les["detected"] for les in lesions),
        "n_matched": len(matched_gt),
        "fp_lesions_any_overlap": fp_any,
        "fp_lesions_iou": n_pred_les - len(used_pred),
        "groups": _group_rows(lesions),
        "lesions": lesions,
    }


def _mean(values: Iterable[float | None]) -> tuple[float | None, int]:
    defined = [v for v in values if v is not None]
    return (float(np.mean(defined)) if defined else None), len(defined)


def aggregate(cases: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Data-set summary: per-case means of DSC/precision/recall (with how many
    cases defined each), lesion counts pooled over cases, and per size group
    the pooled detection rate and pixel recall (as in the paper's Table 2)."""
    out: dict[str, Any] = {"n_cases": len(cases)}
    for key in ("dsc", "precision", "recall"):
        out[key], out[f"{key}_n"] = _mean(c[key] for c in cases)
    n_gt = sum(c["n_gt_lesions"] for c in cases)
    out["n_gt_lesions"] = n_gt
    out["detection_rate"] = _ratio(sum(c["n_detected"] for c in cases), n_gt)
    out["match_rate"] = _ratio(sum(c["n_matched"] for c in cases), n_gt)
    out["fp_lesions_per_case"] = _ratio(sum(c["fp_lesions_any_overlap"] for c in cases), len(cases))
    out["fp_lesions_iou_per_case"] = _ratio(sum(c["fp_lesions_iou"] for c in cases), len(cases))
    groups = {}
    for name in ("small", "large"):
        g = [c["groups"][name] for c in cases]
        n = sum(x["n_lesions"] for x in g)
        groups[name] = {
            "n_lesions": n,
            "median_volume_mm3": (
                float(
                    np.median(
                        [
                            les["volume_mm3"]
                            for c in cases
                            for les in c["lesions"]
                            if les["group"] == name
                        ]
                    )
                )
                if n
                else None
            ),
            "detection_rate": _ratio(sum(x["n_detected"] for x in g), n),
            "match_rate": _ratio(sum(x["n_matched"] for x in g), n),
            "pixel_recall": _ratio(sum(x["tp_vox"] for x in g), sum(x["gt_vox"] for x in g)),
        }
    out["groups"] = groups
    return out


def detection_summary(cases: list[dict[str, Any]], min_mm3: float) -> dict[str, Any]:
    """Share of ground-truth lesions >= min_mm3 detected, and FP lesions per study."""
    big = [les for c in cases for les in c["lesions"] if les["volume_mm3"] >= min_mm3]
    found = sum(les["detected"] for les in big)
    fp = sum(c["fp_lesions_any_overlap"] for c in cases)
    return {
        "min_mm3": min_mm3,
        "n_lesions": len(big),
        "n_detected": found,
        "detection_rate": found / len(big) if big else None,
        "fp_lesions_per_study": fp / len(cases) if cases else None,
    }
