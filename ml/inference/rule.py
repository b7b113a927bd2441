"""How lesions are cut from the two networks' maps, and how that operating point
is calibrated on the validation cases.

The lesion map is ``m = w * p_unet + (1 - w) * p_deepmedic`` (float32, shape
(D, H, W), values in [0, 1]); ``w = 0.5`` is the ensemble mean of docs/METHOD.md
section 2. A **lesion** is a connected component (``connectivity``) of
``m >= threshold`` whose peak ``max(m)`` inside the component is
``>= peak_threshold``: ``threshold`` sets each lesion's extent,
``peak_threshold`` how sure the ensemble must be somewhere inside it (a
hysteresis threshold). ``LesionRule()`` (w 0.5, both thresholds 0.5) is the
paper's rule: every component of ``mean >= 0.5``.

Why more than one number. A network trained for minutes on the CPU leaves many
small components just over the threshold in healthy tissue (vessels, sinus
edges) while real lesions peak well above them: a peak threshold removes the
weak blobs without shrinking the contours of the lesions it keeps. And after
ten CPU minutes DeepMedic has had a few dozen training windows and says almost
nothing (docs/ML.md), so the plain mean halves every U-Net probability; the
weight lets calibration lean on the network that has learned, and shows that it
did (the manifest records the rule).

``calibrate_rule`` picks the operating point on the validation cases: the
rule that detects the most validation lesions of at least ``min_lesion_mm3``
(the paper's rule: any overlap) with at most ``max_fp_per_case``
false-positive lesions per case; among equals the higher DSC (pooled over the
cases), then fewer false positives, then the paper's rule, then the weight and
extent threshold nearest 0.5 and the lowest peak threshold (the most
sensitive). If no rule keeps the FP budget, the one with the fewest FP lesions
wins. Calibration never sees test cases.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ml.lesions import label_lesions, voxel_volume_mm3

CALIBRATION_WEIGHTS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# Extents below 0.4 grow into whole regions of a weakly trained map (DSC 0.03
# at 0.2 on the lite benchmark), so calibration does not go below it.
CALIBRATION_THRESHOLDS: tuple[float, ...] = (0.4, 0.45, 0.5)
CALIBRATION_PEAKS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


@dataclass(frozen=True)
class LesionRule:
    threshold: float = 0.5
    peak_threshold: float = 0.5
    unet_weight: float = 0.5
    connectivity: int = 26

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if not self.threshold <= self.peak_threshold < 1.0:
            raise ValueError(f"peak_threshold must be in [threshold, 1), got {self.peak_threshold}")
        if not 0.0 <= self.unet_weight <= 1.0:
            raise ValueError(f"unet_weight must be in [0, 1], got {self.unet_weight}")

    def lesion_map(self, unet_prob: np.ndarray, deepmedic_prob: np.ndarray) -> np.ndarray:
        """``w * p_unet + (1 - w) * p_deepmedic`` as float32 (D, H, W)."""
        w = np.float32(self.unet_weight)
        return (w * unet_prob + (np.float32(1) - w) * deepmedic_prob).astype(np.float32, copy=False)

    def apply(self, unet_prob: np.ndarray, deepmedic_prob: np.ndarray) -> tuple[np.ndarray, int]:
        """``(labels, n)`` like ``ml.lesions.label_lesions``: 1..n by volume ascending."""
        return self.label(self.lesion_map(unet_prob, deepmedic_prob))

    def label(self, m: np.ndarray) -> tuple[np.ndarray, int]:
        """``apply`` on a lesion map already computed with ``lesion_map``."""
        labels, n = label_lesions(m >= self.threshold, self.connectivity)
        if n == 0 or self.peak_threshold <= self.threshold:
            return labels, n
        keep = component_peaks(labels, n, m) >= np.float32(self.peak_threshold)
        return _keep(labels, keep)

    def describe(self) -> str:
        if self.unet_weight == 0.5:
            text = f"ensemble mean >= {self.threshold:.2f}"
        else:
            text = (
                f"{self.unet_weight:.1f} x U-Net + {1 - self.unet_weight:.1f} x DeepMedic "
                f">= {self.threshold:.2f}"
            )
        text += f" ({self.connectivity}-connected)"
        if self.peak_threshold > self.threshold:
            text += f", kept where the peak is >= {self.peak_threshold:.2f}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def component_peaks(labels: np.ndarray, n: int, m: np.ndarray) -> np.ndarray:
    """Max of ``m`` in each component, index 0 unused; in ``m``'s dtype, like ``m >= t``."""
    inside = labels > 0
    peaks = np.zeros(n + 1, dtype=m.dtype)
    np.maximum.at(peaks, labels[inside], m[inside])
    return peaks


def _keep(labels: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, int]:
    keep = keep.copy()
    keep[0] = False
    # Labels are ordered by volume ascending; renumbering the kept ones in the
    # same order keeps that property.
    remap = np.zeros(len(keep), dtype=np.int32)
    remap[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return remap[labels], int(keep.sum())


@dataclass(frozen=True)
class ValidationMaps:
    """One validation case: both networks' maps and the ground truth (D, H, W)."""

    unet_prob: np.ndarray
    deepmedic_prob: np.ndarray
    gt: np.ndarray
    spacing_mm: tuple[float, float, float]


def _score_table(
    labels: np.ndarray, n: int, peaks: np.ndarray, gt_labels: np.ndarray, n_gt: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per predicted component: peak, size, and its overlap with each ground-truth lesion."""
    pair = labels.astype(np.int64) * (n_gt + 1) + gt_labels
    overlap = np.bincount(pair.ravel(), minlength=(n + 1) * (n_gt + 1)).reshape(n + 1, n_gt + 1)
    return peaks[1:], overlap[1:].sum(axis=1), overlap[1:, 1:]


_GroundTruth = tuple[np.ndarray, int, np.ndarray, int]
_ScoreTable = tuple[np.ndarray, np.ndarray, np.ndarray]


def _ground_truths(
    cases: Sequence[ValidationMaps], connectivity: int, min_lesion_mm3: float
) -> list[_GroundTruth]:
    """Per case: gt labels (D, H, W), lesion count, which lesions are >= ``min_lesion_mm3``
    (bool (n_gt,)) and the number of gt voxels."""
    gts = []
    for case in cases:
        gt_labels, n_gt = label_lesions(case.gt != 0, connectivity)
        sizes = np.bincount(gt_labels.ravel(), minlength=n_gt + 1)[1:]
        big = sizes * voxel_volume_mm3(case.spacing_mm) >= min_lesion_mm3
        gts.append((gt_labels, n_gt, big, int(sizes.sum())))
    return gts


def _threshold_tables(
    maps: list[np.ndarray], gts: list[_GroundTruth], t: float, connectivity: int
) -> list[_ScoreTable]:
    """``_score_table`` of each case's components of ``m >= t``."""
    tables = []
    for m, (gt_labels, n_gt, _, _) in zip(maps, gts, strict=True):
        labels, n = label_lesions(m >= t, connectivity)
        tables.append(_score_table(labels, n, component_peaks(labels, n, m), gt_labels, n_gt))
    return tables


def _peak_scores(
    tables: list[_ScoreTable], gts: list[_GroundTruth], p: float
) -> tuple[int, int, int, int, int]:
    """Pooled over cases, keeping components peaking >= ``p``: big gt lesions found,
    FP lesions, TP voxels, predicted voxels and gt voxels."""
    found = fp = tp = pred = gt_vox = 0
    for (comp_peak, comp_size, ov), (_, _, big, n_gt_vox) in zip(tables, gts, strict=True):
        kept = comp_peak >= np.float32(p)
        hits = ov[kept]
        found += int((hits.sum(axis=0)[big] > 0).sum()) if hits.size else 0
        fp += int((hits.sum(axis=1) == 0).sum())
        tp += int(hits.sum())
        pred += int(comp_size[kept].sum())
        gt_vox += n_gt_vox
    return found, fp, tp, pred, gt_vox


def _grid_rows(
    cases: Sequence[ValidationMaps],
    gts: list[_GroundTruth],
    connectivity: int,
    weights: Iterable[float],
    thresholds: Iterable[float],
    peaks: tuple[float, ...],
) -> list[dict[str, Any]]:
    """The calibration table: one row per (weight, threshold, peak threshold)."""
    n_lesions = int(sum(int(b.sum()) for _, _, b, _ in gts))
    rows: list[dict[str, Any]] = []
    for w in weights:
        maps = [LesionRule(unet_weight=w).lesion_map(c.unet_prob, c.deepmedic_prob) for c in cases]
        for t in thresholds:
            tables = _threshold_tables(maps, gts, t, connectivity)
            for p in sorted({t, *(q for q in peaks if q >= t)}):
                found, fp, tp, pred, gt_vox = _peak_scores(tables, gts, p)
                rows.append(
                    {
                        "unet_weight": float(w),
                        "threshold": float(t),
                        "peak_threshold": float(p),
                        "n_lesions": n_lesions,
                        "n_detected": found,
                        "fp_lesions_per_case": fp / len(cases),
                        "dsc": 1.0 if pred + gt_vox == 0 else 2.0 * tp / (pred + gt_vox),
                        "chosen": False,
                    }
                )
    return rows


def _is_paper(r: dict[str, Any]) -> bool:
    return r["unet_weight"] == 0.5 and r["threshold"] == 0.5 and r["peak_threshold"] == 0.5


def _choose(rows: list[dict[str, Any]], max_fp_per_case: float) -> dict[str, Any]:
    """The preferred row (see the module docstring for the order of preference)."""
    within = [r for r in rows if r["fp_lesions_per_case"] <= max_fp_per_case]
    if not within:
        return min(rows, key=lambda r: (r["fp_lesions_per_case"], -r["n_detected"], -r["dsc"]))
    return max(
        within,
        key=lambda r: (
            r["n_detected"],
            round(r["dsc"], 6),
            -r["fp_lesions_per_case"],
            _is_paper(r),
            -abs(r["unet_weight"] - 0.5),
            -abs(r["threshold"] - 0.5),
            -r["peak_threshold"],
        ),
    )


def calibrate_rule(
    cases: Sequence[ValidationMaps],
    *,
    max_fp_per_case: float = 1.0,
    min_lesion_mm3: float = 100.0,
    connectivity: int = 26,
    weights: Iterable[float] = CALIBRATION_WEIGHTS,
    thresholds: Iterable[float] = CALIBRATION_THRESHOLDS,
    peaks: Iterable[float] = CALIBRATION_PEAKS,
) -> tuple[LesionRule, list[dict[str, Any]]]:
    """The operating point for these validation cases and the table it was chosen from.

    Each table row: ``unet_weight``, ``threshold``, ``peak_threshold``,
    ``n_lesions`` and ``n_detected`` (ground-truth lesions >= ``min_lesion_mm3``),
    ``fp_lesions_per_case`` (components touching no ground truth), ``dsc``
    (pooled voxel DSC) and ``chosen``. Scores come from one overlap table per
    (weight, threshold) and case, so the whole grid costs a few labellings.
    Without cases, the paper's rule and an empty table.
    """
    paper = LesionRule(connectivity=connectivity)
    if not cases:
        return paper, []
    gts = _ground_truths(cases, connectivity, min_lesion_mm3)
    rows = _grid_rows(cases, gts, connectivity, weights, thresholds, tuple(peaks))
    best = _choose(rows, max_fp_per_case)
    best["chosen"] = True
    rule = LesionRule(best["threshold"], best["peak_threshold"], best["unet_weight"], connectivity)
    return rule, rows
