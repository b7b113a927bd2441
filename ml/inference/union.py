"""A union-of-detections ensemble: neither network loses what the other finds.

``UnionRule``: each network's map is cut at its own operating point (components of
``p >= threshold`` whose peak is ``>= peak_threshold``, as ``LesionRule`` cuts the
weighted map, with weight 1 on that network), and the lesions are the connected
components of the union of what the two keep. A lesion that either network finds
at its operating point is therefore found by the ensemble (any-overlap rule,
docs/ML.md); the price is that false positives add up, which calibration accounts
for. A network can be switched off (``NetOperatingPoint(enabled=False)``).

Why: the weighted mean of two maps reaches a threshold only where both agree
enough, so a lesion only one network sees (small lesions: the vol-dice U-Net) is
lost in the mean (docs/ML.md "Experiment": the vol-dice U-Net found 23 of 28, the
mean 18).

``calibrate_union`` chooses both operating points together on the validation
cases: for each network, every (threshold, peak) of the grid, plus "off", gives
the set of validation lesions (>= ``min_lesion_mm3``) it detects and its false
positive components; the pair whose union detects the most lesions with at most
``max_fp_per_case`` false positives per case (counted as the sum of both
networks' false-positive components: an upper bound, since overlapping ones merge
in the union) wins; ties go to fewer false positives, then to the higher peaks.
A kept component with less than ``MIN_COMPONENT_PRECISION`` of its voxels inside
lesions counts as a false positive and detects nothing: otherwise one component
spreading over the whole head "detects" every lesion without a single false positive
under the any-overlap rule (seen on the first run of ``benchmarks/ml_generalisation.py``:
24 of 24 lesions, 0 FP, lesion Dice 0.003).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ml.inference.rule import (
    CALIBRATION_PEAKS,
    CALIBRATION_THRESHOLDS,
    LesionRule,
    ValidationMaps,
    _ground_truths,
    _threshold_tables,
)
from ml.lesions import label_lesions

NETS = ("unet", "deepmedic")
MIN_COMPONENT_PRECISION = 0.1


@dataclass(frozen=True)
class NetOperatingPoint:
    """One network's cut: extent ``threshold``, ``peak_threshold`` inside, or off."""

    threshold: float = 0.5
    peak_threshold: float = 0.5
    enabled: bool = True

    def __post_init__(self) -> None:
        LesionRule(self.threshold, self.peak_threshold, 1.0)  # same range checks

    def describe(self) -> str:
        if not self.enabled:
            return "off"
        text = f">= {self.threshold:.2f}"
        if self.peak_threshold > self.threshold:
            text += f", peak >= {self.peak_threshold:.2f}"
        return text


@dataclass(frozen=True)
class UnionRule:
    """Lesions = components of the union of each network's kept components."""

    unet: NetOperatingPoint = field(default_factory=NetOperatingPoint)
    deepmedic: NetOperatingPoint = field(default_factory=NetOperatingPoint)
    connectivity: int = 26

    def kept(self, net: str, prob: np.ndarray) -> np.ndarray:
        """Bool (D, H, W): the components network ``net`` keeps at its operating point."""
        op: NetOperatingPoint = getattr(self, net)
        if not op.enabled:
            return np.zeros(prob.shape, dtype=bool)
        rule = LesionRule(op.threshold, op.peak_threshold, 1.0, self.connectivity)
        labels, _n = rule.label(prob.astype(np.float32, copy=False))
        return labels > 0

    def apply(self, unet_prob: np.ndarray, deepmedic_prob: np.ndarray) -> tuple[np.ndarray, int]:
        """``(labels, n)`` like ``ml.lesions.label_lesions`` (1..n by volume ascending)."""
        union = self.kept("unet", unet_prob) | self.kept("deepmedic", deepmedic_prob)
        return label_lesions(union, self.connectivity)

    def describe(self) -> str:
        return (
            f"union of U-Net {self.unet.describe()} and DeepMedic {self.deepmedic.describe()} "
            f"({self.connectivity}-connected)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "union", **asdict(self)}


_OFF = NetOperatingPoint(enabled=False)


def _net_options(
    maps: list[np.ndarray],
    gts: list,
    connectivity: int,
    thresholds: Iterable[float],
    peaks: tuple[float, ...],
) -> list[tuple[NetOperatingPoint, frozenset[tuple[int, int]], int]]:
    """(operating point, detected validation lesions as (case, lesion), FP components)."""
    options: list[tuple[NetOperatingPoint, frozenset[tuple[int, int]], int]] = [
        (_OFF, frozenset(), 0)
    ]
    for t in thresholds:
        tables = _threshold_tables(maps, gts, t, connectivity)
        for p in sorted({t, *(q for q in peaks if q >= t)}):
            found: set[tuple[int, int]] = set()
            fp = 0
            for ci, ((comp_peak, size, ov), (_, _, big, _)) in enumerate(
                zip(tables, gts, strict=True)
            ):
                kept = comp_peak >= np.float32(p)
                precise = ov.sum(axis=1) >= MIN_COMPONENT_PRECISION * size
                hits = ov[kept & precise]
                if hits.size:
                    found.update((ci, int(k)) for k in np.flatnonzero((hits.sum(axis=0) > 0) & big))
                fp += int((kept & ~precise).sum())
            options.append((NetOperatingPoint(float(t), float(p)), frozenset(found), fp))
    return options


def calibrate_union(
    cases: Sequence[ValidationMaps],
    *,
    max_fp_per_case: float = 1.0,
    min_lesion_mm3: float = 100.0,
    connectivity: int = 26,
    thresholds: Iterable[float] = CALIBRATION_THRESHOLDS,
    peaks: Iterable[float] = CALIBRATION_PEAKS,
) -> tuple[UnionRule, dict[str, Any]]:
    """Both networks' operating points for these validation cases (module docstring).

    Returns the rule and a record: ``n_lesions`` (validation lesions >=
    ``min_lesion_mm3``), ``n_detected`` by the union and by each network at its
    chosen point, ``fp_bound_per_case`` (sum of both networks' FP components per
    case) and ``within_budget``. If no pair keeps the budget, the pair with the
    fewest false positives wins. Without cases: both networks at 0.5.
    """
    if not cases:
        return UnionRule(connectivity=connectivity), {"n_lesions": 0, "within_budget": True}
    gts = _ground_truths(cases, connectivity, min_lesion_mm3)
    peaks = tuple(peaks)
    thresholds = tuple(thresholds)
    opts = {
        net: _net_options(
            [getattr(c, f"{net}_prob").astype(np.float32, copy=False) for c in cases],
            gts, connectivity, thresholds, peaks,
        )
        for net in NETS
    }  # fmt: skip
    budget = max_fp_per_case * len(cases)

    def key(pair):
        (ou, fu, pu), (od, fd, pd) = pair
        within = pu + pd <= budget + 1e-9
        return (within, len(fu | fd) if within else -(pu + pd), -(pu + pd),
                ou.peak_threshold, od.peak_threshold)  # fmt: skip

    best = max(((u, d) for u in opts["unet"] for d in opts["deepmedic"]), key=key)
    (ou, fu, pu), (od, fd, pd) = best
    record = {
        "n_lesions": int(sum(int(b.sum()) for _, _, b, _ in gts)),
        "n_detected": len(fu | fd),
        "n_detected_unet": len(fu),
        "n_detected_deepmedic": len(fd),
        "fp_bound_per_case": (pu + pd) / len(cases),
        "within_budget": pu + pd <= budget + 1e-9,
    }
    return UnionRule(ou, od, connectivity), record
