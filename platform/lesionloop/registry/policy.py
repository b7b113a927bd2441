"""When a candidate may replace the active version (docs/MODELS.md, "Promotion").

Both sides are scored on the same studies: the current gate set version when there is
one (``comparison_for``; a side not yet scored on it is *not comparable* and the
comparison waits for its scoring job), else, before any gate set exists, the parent
rescored on the candidate's validation studies. A candidate is *not worse* when
- small-lesion sensitivity >= the active version's - ``SMALL_SENSITIVITY_TOLERANCE``
- voxel DSC >= the active version's - ``DSC_TOLERANCE``.
A metric that either side lacks (e.g. no small lesion in the split) is not judged.
Otherwise an admin must give a written reason to promote.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from .models import ModelVersion
from .selectors import gate_score_done, gate_set_current

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


def comparison_for(candidate: ModelVersion, active: ModelVersion) -> dict[str, Any]:
    """The promotion comparison of ``candidate`` against ``active`` on comparable numbers:
    ``{worse, checks, reference, comparable, gate_set, missing}``. ``comparable`` is
    False (and nothing judged) while either side lacks a finished score on the current
    gate set; ``missing`` names them."""
    gate = gate_set_current()
    if gate is None:
        reference, source = reference_metrics(candidate, active)
        return {
            **compare(candidate.metrics or {}, reference),
            "reference": f"{source} (no gate set yet)",
            "comparable": True,
            "gate_set": None,
            "missing": [],
        }
    scores = {v.name: gate_score_done(version_id=v.pk, gate_set=gate) for v in (candidate, active)}
    missing = [name for name, score in scores.items() if score is None]
    label = f"gate set v{gate.number} ({gate.n_studies} studies, {gate.n_lesions} lesions)"
    if missing:
        return {
            "worse": False,
            "checks": [],
            "reference": label,
            "comparable": False,
            "gate_set": gate.number,
            "missing": missing,
        }
    result = compare(scores[candidate.name].metrics, scores[active.name].metrics)
    return {
        **result,
        "reference": label,
        "comparable": True,
        "gate_set": gate.number,
        "missing": [],
    }
