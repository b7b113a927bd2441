"""Pages of the browser viewer: server-rendered shells, filled in by static JS that calls
the API. The pages only decide what is shown; the API enforces every role anyway."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from lesionloop.accounts.roles import can_audit, can_manage_models, can_read, can_review

log = logging.getLogger(__name__)


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied("Your role does not give access to this page.")


@login_required
def worklist(request: HttpRequest) -> HttpResponse:
    _require(can_read(request.user))
    return render(request, "viewer/worklist.html", {"page": "worklist"})


def _case_initial(study_id: int) -> tuple[dict[str, Any] | None, int | None]:
    """The study detail and lesions exactly as the API would send them, embedded in the
    page so the first slice can be requested while the scripts still load (one round
    trip fewer before the first image). Any trouble: the page fetches them itself."""
    try:
        from lesionloop.review import selectors as review_selectors
        from lesionloop.review.api.serializers import LesionSerializer
        from lesionloop.studies import selectors as study_selectors
        from lesionloop.studies.api.serializers import StudyDetailSerializer

        study = study_selectors.study_get(study_id=study_id)
        if not study.prepared or not study.grid.get("shape_dhw"):
            return None, None
        lesions = list(review_selectors.study_lesions(study_id=study_id, ordering="volume_mm3"))
        depth = int(study.grid["shape_dhw"][0])
        # The smallest lesion still on the mask (an erased one is kept at 0 mm3).
        present = [les for les in lesions if les.volume_mm3 > 0]
        first = (
            present[0].largest_slice
            if present and present[0].largest_slice is not None
            else depth // 2
        )
        data = {
            "study": StudyDetailSerializer(study).data,
            "lesions": LesionSerializer(lesions, many=True).data,
        }
        return data, int(first)
    except Exception:  # noqa: BLE001 - the page works without it
        log.warning("case %s: no embedded initial data", study_id, exc_info=True)
        return None, None


@login_required
def case_viewer(request: HttpRequest, study_id: int) -> HttpResponse:
    _require(can_read(request.user))
    initial, first_slice = _case_initial(study_id)
    return render(
        request,
        "viewer/case.html",
        {
            "page": "case",
            "study_id": study_id,
            "editable": can_review(request.user),
            "lease_seconds": settings.LESIONLOOP_LEASE_SECONDS,
            "initial": initial,
            "first_slice": first_slice,
        },
    )


@login_required
def models_page(request: HttpRequest) -> HttpResponse:
    # Everyone who reads may look at the versions; only admins get the controls.
    _require(can_read(request.user))
    return render(
        request, "viewer/models.html", {"page": "models", "manage": can_manage_models(request.user)}
    )


@login_required
def audit_index(request: HttpRequest) -> HttpResponse:
    _require(can_audit(request.user))
    return render(request, "viewer/audit.html", {"page": "audit", "mode": "index"})


@login_required
def audit_study(request: HttpRequest, study_id: int) -> HttpResponse:
    _require(can_audit(request.user))
    return render(
        request, "viewer/audit.html", {"page": "audit", "mode": "study", "object_id": study_id}
    )


@login_required
def audit_model(request: HttpRequest, version_id: int) -> HttpResponse:
    _require(can_audit(request.user))
    return render(
        request, "viewer/audit.html", {"page": "audit", "mode": "model", "object_id": version_id}
    )
