"""Writes for the model registry: create, publish, fail, promote, roll back.

What follows an activation (releasing waiting studies, re-pre-segmenting unreviewed
ones) is not the registry's business: ``lesionloop.loop.flows`` chains it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from lesionloop.audit.services import audit_record
from lesionloop.core.exceptions import Conflict, DomainError

from . import policy
from .models import GateScore, GateSetVersion, ModelVersion
from .selectors import model_version_active

log = logging.getLogger(__name__)
Status = ModelVersion.Status


def _next_name() -> str:
    n = ModelVersion.objects.count() + 1
    while ModelVersion.objects.filter(name=f"v{n}").exists():
        n += 1
    return f"v{n}"


def model_version_create(
    *,
    parent: ModelVersion | None,
    preset: str,
    created_by: User | None,
    hyperparameters: dict[str, Any],
    code_version: str,
    train_study_ids: list[int],
    val_study_ids: list[int],
) -> ModelVersion:
    """A new version in ``training``; its weights arrive with ``model_version_publish``."""
    for _ in range(3):
        try:
            with transaction.atomic():
                return ModelVersion.objects.create(
                    name=_next_name(),
                    parent=parent,
                    status=Status.TRAINING,
                    preset=preset,
                    created_by=created_by,
                    hyperparameters=hyperparameters,
                    code_version=code_version,
                    train_study_ids=train_study_ids,
                    val_study_ids=val_study_ids,
                )
        except IntegrityError:  # a name taken concurrently; take the next
            continue
    raise Conflict("Could not allocate a model version name; try again.", code="name_taken")


def model_version_publish(
    *,
    version_id: int,
    weights_dir: str,
    weights: list[dict[str, str]],
    metrics: dict[str, Any],
) -> ModelVersion:
    """Training finished and the files are in place: the version becomes a candidate."""
    updated = ModelVersion.objects.filter(pk=version_id, status=Status.TRAINING).update(
        status=Status.CANDIDATE, weights_dir=weights_dir, weights=weights, metrics=metrics
    )
    if not updated:
        raise Conflict("This version is no longer training.", code="not_training")
    return ModelVersion.objects.get(pk=version_id)


def model_version_fail(*, version_id: int, reason: str, cancelled: bool = False) -> None:
    """A version still training ends ``failed``, or ``cancelled`` when an admin cancelled
    its run (the versions table must not call a cancellation a failure)."""
    ModelVersion.objects.filter(pk=version_id, status=Status.TRAINING).update(
        status=Status.CANCELLED if cancelled else Status.FAILED, status_reason=reason[:4000]
    )


def _activate(*, target: ModelVersion, user: User | None, note: str) -> ModelVersion | None:
    """Make ``target`` the one active version (caller holds the locks). Returns the
    previous active version."""
    previous = (
        ModelVersion.objects.select_for_update()
        .filter(status=Status.ACTIVE)
        .exclude(pk=target.pk)
        .first()
    )
    if previous is not None:
        previous.status = Status.RETIRED
        previous.status_reason = f"replaced by {target.name}"
        previous.save(update_fields=["status", "status_reason"])
    target.status = Status.ACTIVE
    target.status_reason = ""
    target.promoted_at = timezone.now()
    target.promoted_by = user if getattr(user, "is_authenticated", False) else None
    target.promotion_note = note
    target.save(
        update_fields=["status", "status_reason", "promoted_at", "promoted_by", "promotion_note"]
    )
    return previous


def _lock(version_id: int) -> ModelVersion:
    # Lock the active version first, then the target: one fixed order everywhere.
    list(ModelVersion.objects.select_for_update().filter(status=Status.ACTIVE).order_by("pk"))
    try:
        return ModelVersion.objects.select_for_update().get(pk=version_id)
    except ModelVersion.DoesNotExist:
        raise DomainError("No such model version.", code="not_found", status_code=404) from None


def _refuse_unless_overridden(
    target: ModelVersion, active: ModelVersion, comparison: dict[str, Any], override_reason: str
) -> None:
    """409 ``not_comparable`` (a side not yet scored on the current gate set) or
    ``worse_than_active``, unless an admin gave a written reason."""
    if override_reason:
        return
    if not comparison["comparable"]:
        raise Conflict(
            f"{', '.join(comparison['missing'])} not yet scored on {comparison['reference']}; "
            "the scoring job is queued. Promote once it has finished (or give an "
            "override_reason).",
            code="not_comparable",
            extra={"active": active.name, "comparison": comparison},
        )
    if comparison["worse"]:
        raise Conflict(
            f"{target.name} is worse than the active version {active.name} on "
            f"{comparison['reference']}; give an override_reason to promote it anyway.",
            code="worse_than_active",
            extra={"active": active.name, "comparison": comparison},
        )


@transaction.atomic
def model_version_promote(
    *, version_id: int, user: User | None, override_reason: str = "", automatic: bool = False
) -> ModelVersion:
    """Make a candidate active when it is not worse than the active version on the
    validation split (``policy``), or when an admin overrides with a written reason."""
    target = _lock(version_id)
    if target.status != Status.CANDIDATE:
        raise Conflict(
            f"{target.name} is {target.status}; only candidates can be promoted"
            + (" (use rollback for earlier versions)." if target.status == Status.RETIRED else "."),
            code="not_candidate",
        )
    override_reason = (override_reason or "").strip()
    active = model_version_active()
    comparison: dict[str, Any] = {"worse": False, "checks": [], "reference": None}
    if active is not None:
        comparison = policy.comparison_for(target, active)
        _refuse_unless_overridden(target, active, comparison, override_reason)
    overridden = bool(
        (comparison["worse"] or not comparison.get("comparable", True)) and override_reason
    )
    note = override_reason or (
        "first model (no active version)" if active is None else "not worse than active"
    )
    previous = _activate(target=target, user=user, note=note)
    payload = {
        "version": target.name,
        "previous": previous.name if previous else None,
        "comparison": comparison,
        "automatic": automatic,
    }
    audit_record(event_type="model_promoted", actor=user, model_version=target, **payload)
    if overridden:
        audit_record(
            event_type="model_promotion_override",
            actor=user,
            model_version=target,
            version=target.name,
            override_reason=override_reason,
            comparison=comparison,
        )
    return target


@transaction.atomic
def model_version_rollback(*, version_id: int, user: User | None, reason: str = "") -> ModelVersion:
    """Make an earlier, once-active version active again, in one step."""
    target = _lock(version_id)
    if target.status == Status.ACTIVE:
        raise Conflict(f"{target.name} is already active.", code="already_active")
    if target.status not in (Status.RETIRED, Status.CANDIDATE) or target.promoted_at is None:
        raise Conflict(
            f"{target.name} was never active ({target.status}); only earlier active versions "
            "can be rolled back to (promote a candidate instead).",
            code="not_rollback_target",
        )
    previous = _activate(target=target, user=user, note=reason or "rollback")
    audit_record(
        event_type="model_rolled_back",
        actor=user,
        model_version=target,
        version=target.name,
        previous=previous.name if previous else None,
        reason=reason,
    )
    return target


# --- the gate set and scores on it ------------------------------------------------


def gate_set_version_grow(*, new_members: list[dict[str, Any]]) -> GateSetVersion:
    """The next gate set version: every member of the current one plus ``new_members``
    (``{"study_id", "snapshot_dir", "stratum", "n_lesions"}``). Never drops a member: a
    set only grows. Call inside the transaction that assigned the new members (the
    caller serialises growth)."""
    current = GateSetVersion.objects.order_by("-number").first()
    members = list(current.members) if current else []
    known = {int(m["study_id"]) for m in members}
    members += [m for m in new_members if int(m["study_id"]) not in known]
    strata: dict[str, int] = {}
    for m in members:
        strata[m["stratum"]] = strata.get(m["stratum"], 0) + 1
    gate = GateSetVersion.objects.create(
        number=(current.number + 1) if current else 1,
        members=members,
        n_studies=len(members),
        n_lesions=sum(int(m["n_lesions"]) for m in members),
        strata=strata,
    )
    audit_record(
        event_type="gate_set_grown",
        version=gate.number,
        added=[int(m["study_id"]) for m in new_members if int(m["study_id"]) not in known],
        n_studies=gate.n_studies,
        n_lesions=gate.n_lesions,
        strata=strata,
    )
    return gate


def gate_score_request(*, version_id: int, gate_set_id: int) -> tuple[GateScore, bool]:
    """The score of a version on a gate set, created ``queued`` when missing, or queued
    again when it had failed; True when the caller must enqueue its job (on commit).
    Asking again never makes a second row and never re-runs a queued, running or done
    score."""
    score, created = GateScore.objects.get_or_create(
        model_version_id=version_id, gate_set_id=gate_set_id
    )
    if not created and score.status == GateScore.Status.FAILED:
        requeued = GateScore.objects.filter(pk=score.pk, status=GateScore.Status.FAILED).update(
            status=GateScore.Status.QUEUED, message="", started_at=None, finished_at=None
        )
        score.refresh_from_db()
        return score, bool(requeued)
    return score, created


def gate_score_claim(*, score_id: int) -> GateScore | None:
    """Claim a queued score (conditional update); None when another worker has it or it
    is finished."""
    claimed = GateScore.objects.filter(pk=score_id, status=GateScore.Status.QUEUED).update(
        status=GateScore.Status.RUNNING, started_at=timezone.now(), message=""
    )
    if not claimed:
        return None
    return GateScore.objects.select_related("model_version", "gate_set").get(pk=score_id)


def gate_score_finish(*, score_id: int, metrics: dict[str, Any]) -> None:
    GateScore.objects.filter(pk=score_id, status=GateScore.Status.RUNNING).update(
        status=GateScore.Status.DONE, metrics=metrics, finished_at=timezone.now()
    )


def gate_score_fail(*, score_id: int, reason: str) -> None:
    GateScore.objects.filter(pk=score_id, status=GateScore.Status.RUNNING).update(
        status=GateScore.Status.FAILED, message=reason[:4000], finished_at=timezone.now()
    )
