"""Active-learning review priority of a study, computed when it is pre-segmented.

    priority = sum_i d_i  +  W_SMALL * sum_i [v_i < V_SMALL_MM3] * u_i

over the predicted lesions i, where ``d_i`` is the ensemble disagreement (mean
|p_unet - p_deepmedic| inside the lesion, 0..1), ``v_i`` the volume in mm3 and
``u_i = 1 - |2 * mean_prob_i - 1|`` the uncertainty (1 when the mean probability is
0.5, 0 when it is 0 or 1). Small uncertain candidates are what the model misses or
invents most, and what a clinician's decision teaches it most, so they weigh double.
A study with no candidate has priority 0. See docs/PLATFORM.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

W_SMALL = 2.0
V_SMALL_MM3 = 65.45  # a sphere of 5 mm diameter


def review_priority(lesions: Iterable[Mapping[str, Any]]) -> float:
    total = 0.0
    for lesion in lesions:
        d = float(lesion.get("disagreement") or 0.0)
        total += d
        if float(lesion.get("volume_mm3") or 0.0) < V_SMALL_MM3:
            p = lesion.get("mean_prob")
            u = 1.0 - abs(2.0 * float(p) - 1.0) if p is not None else 0.0
            total += W_SMALL * max(0.0, u)
    return round(total, 6)
