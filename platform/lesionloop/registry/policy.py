"""When a candidate may replace the active version (docs/MODELS.md, "Promotion").

A candidate is *not worse* when, on the validation split,
- small-lesion sensitivity >= the active version's - ``SMALL_SENSITIVITY_TOLERANCE``
- voxel DSC >= the active version's - ``DSC_TOLERANCE``.
A metric that either side lacks (e.g. no small lesion in the split) is not judged.
Otherwise an admin must give a written reason to promote.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from .models import ModelVersion

DSC_TOLERANCE = 0.02
SMALL_SENSITIVITY_TOLERANCE = 0.0

CHECKED = ("small_sensitivity", "dsc")


def tolerances() -> dict[str, float]:
    return {
        "small_sensitivity": float(
            getattr(
                settings, "LESIONLOOP_PROMOTION_SMALL_SENS_TOLERANCE", SMALL_SENSITIVITY_TOLERANCE
            )
        ),
        "dsc": float(getattr(settings, "LESIONLOOP_PROMOTION_DSC_TOLERANCE", DSC_TOLERANCE)),
    }


def reference_metrics(candidate: ModelVersion, active: ModelVersion) -> tuple[dict[str, Any], str]:
    """The active version's metrics to compare against, preferring its score on the
    candidate's own validation studies (computed in the same run) when it is the parent."""
    baseline = (candidate.metrics or {}).get("baseline")
    if baseline and candidate.parent_id == active.pk:
        return baseline, "parent rescored on the candidate's validation studies"
    return active.metrics or {}, "active version's stored validation metrics"


def compare(candidate: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    tol = tolerances()
    checks = []
    for metric in CHECKED:
        cand, ref = candidate.get(metric), reference.get(metric)
        judged = cand is not None and ref is not None
        ok = (not judged) or cand >= ref - tol[metric]
        checks.append(
            {
                "metric": metric,
                "candidate": cand,
                "active": ref,
                "tolerance": tol[metric],
                "judged": judged,
                "ok": ok,
            }
        )
    return {"worse": not all(c["ok"] for c in checks), "checks": checks}
