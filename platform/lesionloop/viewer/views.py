"""Pages of the browser viewer: server-rendered shells, filled in by static JS that calls
the API. The pages only decide what is shown; the API enforces every role anyway."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from lesionloop.accounts.roles import can_audit, can_manage_models, can_read, can_review


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied("Your role does not give access to this page.")


@login_required
def worklist(request: HttpRequest) -> HttpResponse:
    _require(can_read(request.user))
    return render(request, "viewer/worklist.html", {"page": "worklist"})


@login_required
def case_viewer(request: HttpRequest, study_id: int) -> HttpResponse:
    _require(can_read(request.user))
    return render(
        request,
        "viewer/case.html",
        {
            "page": "case",
            "study_id": study_id,
            "editable": can_review(request.user),
            "lease_seconds": settings.LESIONLOOP_LEASE_SECONDS,
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
