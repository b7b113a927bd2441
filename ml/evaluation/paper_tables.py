"""The paper's Tables 2 and 3 beside an experiment's results, as text lines.

Numbers from Hu et al., MICCAI 2019 (docs/METHOD.md, "Results"): Table 3 gives
DSC, precision and recall of each configuration (median over runs); Table 2
the U-Net's pixel-wise recall and detection rate for small (<= 1500 mm3) and
large lesions. ``per_seed`` is a list of ``run_seed`` results
(``ml.evaluation.experiment``): ``{"seed", "summary": {name: aggregate},
"training"}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PAPER_TABLE3 = {
    "unet_dice": (0.669, 0.689, 0.700),
    "deepmedic": (0.625, 0.631, 0.734),
    "ensemble_dice": (0.719, 0.788, 0.713),
    "ensemble_voldice": (0.740, 0.779, 0.803),
    "unet_voldice": (None, None, None),
}
# Table 2: (pixel recall, detection) for small (<= 1500 mm3) and large lesions, U-Net.
PAPER_TABLE2 = {
    ("small", "unet_dice"): (0.466, 0.619),
    ("small", "unet_voldice"): (0.633, 0.672),
    ("large", "unet_dice"): (0.826, 0.987),
    ("large", "unet_voldice"): (0.828, 0.974),
}
LABELS = {
    "unet_dice": "3D U-Net, Dice",
    "unet_voldice": "3D U-Net, vol-dice BR",
    "deepmedic": "DeepMedic, cross-entropy",
    "ensemble_dice": "U-Net (Dice) + DeepMedic",
    "ensemble_voldice": "U-Net (vol-dice) + DeepMedic",
}


def fmt(v: float | None) -> str:
    return "   -  " if v is None else f"{v:6.3f}"


def _median_std(values: list[float | None]) -> tuple[float | None, float | None]:
    v = [x for x in values if x is not None]
    if not v:
        return None, None
    return float(np.median(v)), float(np.std(v))


def _cell(values: list[float | None]) -> str:
    """Median (std) over seeds; the std only with more than one seed."""
    med, std = _median_std(values)
    if med is None:
        return "      -       "
    return f"{med:6.3f}" + (f" ({std:.3f})" if len(values) > 1 else "        ")


def table3_lines(per_seed: list[dict[str, Any]]) -> list[str]:
    """Table 3: DSC, precision, recall of every configuration, paper beside ours."""
    seeds = [r["seed"] for r in per_seed]
    lines = [
        f"\nTable 3 (paper: private CT+MR data, median (std) over runs; ours: synthetic test set, seeds {seeds}, median (std) over seeds)",
        f"{'configuration':32s} | {'paper DSC':>9s} {'prec':>6s} {'recall':>6s} | {'our DSC':>14s} {'precision':>14s} {'recall':>14s}",
    ]
    for name, label in LABELS.items():
        paper = PAPER_TABLE3[name]
        ours = [
            _cell([r["summary"][name][k] for r in per_seed]) for k in ("dsc", "precision", "recall")
        ]
        lines.append(
            f"{label:32s} | {fmt(paper[0]):>9s} {fmt(paper[1])} {fmt(paper[2])} | {ours[0]:>14s} {ours[1]:>14s} {ours[2]:>14s}"
        )
    return lines


def table2_lines(per_seed: list[dict[str, Any]]) -> list[str]:
    """Table 2: the U-Nets' small / large lesion pixel recall and detection."""
    lines = [
        "\nTable 2 (U-Net; small <= 1500 mm3 < large; pixel-wise recall and detection = any voxel predicted)",
        f"{'group':6s} {'loss':10s} | {'paper pix':>9s} {'det':>6s} | {'n':>4s} {'median mm3':>10s} {'our pix-recall':>14s} {'detection':>14s} {'IoU>=.5 match':>14s}",
    ]
    for group in ("small", "large"):
        for name, loss in (("unet_dice", "Dice"), ("unet_voldice", "vol-dice")):
            paper = PAPER_TABLE2[(group, name)]
            g = [r["summary"][name]["groups"][group] for r in per_seed]
            lines.append(
                f"{group:6s} {loss:10s} | {fmt(paper[0]):>9s} {fmt(paper[1])} | {g[0]['n_lesions']:4d} {fmt(g[0]['median_volume_mm3']):>10s} "
                f"{_cell([x['pixel_recall'] for x in g]):>14s} {_cell([x['detection_rate'] for x in g]):>14s} {_cell([x['match_rate'] for x in g]):>14s}"
            )
    return lines


def claim_lines(per_seed: list[dict[str, Any]]) -> list[str]:
    """Whether each seed shows the directions the paper reports."""
    lines = ["\nClaims (directions the paper reports), per seed:"]
    for r in per_seed:
        s = r["summary"]
        small_d = s["unet_dice"]["groups"]["small"]["pixel_recall"]
        small_v = s["unet_voldice"]["groups"]["small"]["pixel_recall"]
        ok1 = small_d is not None and small_v is not None and small_v > small_d
        lines.append(
            f"  seed {r['seed']}: vol-dice raises small-lesion pixel recall: {'YES' if ok1 else 'NO'} ({fmt(small_d)} -> {fmt(small_v)})"
        )
        for variant, unet in (("ensemble_dice", "unet_dice"), ("ensemble_voldice", "unet_voldice")):
            e, u, d = s[variant]["dsc"], s[unet]["dsc"], s["deepmedic"]["dsc"]
            ok2 = e is not None and u is not None and d is not None and e > u and e > d
            lines.append(
                f"  seed {r['seed']}: {LABELS[variant]} beats each net's DSC: {'YES' if ok2 else 'NO'} (ensemble {fmt(e)}, U-Net {fmt(u)}, DeepMedic {fmt(d)})"
            )
    return lines


def table_lines(per_seed: list[dict[str, Any]]) -> list[str]:
    """Tables 3 and 2 and the per-seed claims."""
    return table3_lines(per_seed) + table2_lines(per_seed) + claim_lines(per_seed)


def target_lines(per_seed: list[dict[str, Any]]) -> list[str]:
    """The lite quality target (>= 90% of lesions >= 100 mm3 found, <= 1 FP lesion
    per study) per seed and configuration (``summary[name]["target_100mm3"]``)."""
    lines = [
        "\nLite quality target (>= 90% of lesions >= 100 mm3 detected, <= 1 FP lesion per study):"
    ]
    for r in per_seed:
        for name, label in LABELS.items():
            t = r["summary"][name]["target_100mm3"]
            ok = (t["detection_rate"] or 0) >= 0.9 and (t["fp_lesions_per_study"] or 0) <= 1
            lines.append(
                f"  seed {r['seed']} {label:30s} detected {t['n_detected']}/{t['n_lesions']} "
                f"({fmt(t['detection_rate'])}), FP lesions/study {fmt(t['fp_lesions_per_study'])}: {'MET' if ok else 'not met'}"
            )
    return lines
