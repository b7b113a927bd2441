"""The loop: the few functions that chain one app's step to the next app's step.

::

    study in (upload / import)                                  [studies]
        |  ingest, register, prepare
        |  (with ground truth: working mask, approved          [studies -> review])
        v
    pre-contour (pre-segmentation with the active model)       [studies]
        |  prediction stored -> working mask, study ready      [studies -> review]
        v
    review (lease, decisions, mask edits)                       [review]
        |
        v
    approval --(training-eligible)--> maybe start retraining    [review -> training]
        ^  '--(nodes with send_on_approval)--> C-STORE RTSTRUCT + SEG  [pacs]
        |                                  |  train, publish a candidate
        |                                  v
        |                              promotion (admin, or the first model by itself)
        |                                  |                     [registry]
        |                                  v
        +---- re-pre-segmentation of unreviewed studies,        [studies]
              release of studies awaiting a model (a Dramatiq job)

The apps' services never call a service of an app above them (``tests/test_layers.py``);
each hand-over that would climb a layer lives here, is called from the entry points
(API views, actors, management commands) and schedules the next step with
``transaction.on_commit`` so it only happens once the step before is committed. The one
step that must share a transaction with the step before (a prediction or ground truth
becomes the working mask as the job finishes) is handed to the studies service as a
callable instead.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.contrib.auth.models import User
from django.db import transaction

from lesionloop.audit.services import audit_record
from lesionloop.core import queueing
from lesionloop.pacs import services as pacs
from lesionloop.registry import selectors as registry_selectors
from lesionloop.registry import services as registry
from lesionloop.registry.models import ModelVersion
from lesionloop.registry.selectors import model_version_never_activated
from lesionloop.review import services as review
from lesionloop.studies import services as studies
from lesionloop.studies.models import Job, Study
from lesionloop.training import services as training
from lesionloop.training.services import training_maybe_autostart

from . import tasks

log = logging.getLogger(__name__)


# --- approval -> maybe start retraining ----------------------------------------------


def _retraining_maybe_start() -> None:
    try:
        training_maybe_autostart()
    except Exception:  # retraining trouble must never undo or hide an approval
        log.exception("training_maybe_autostart failed after an approval")


def _gate_set_update() -> None:
    try:
        training.gate_set_update()
    except Exception:  # the split's trouble must never undo or hide an approval
        log.exception("assigning the split / growing the gate set failed after an approval")


def _after_approval(study: Study | None) -> None:
    """A training-eligible approval is assigned its split (and may grow the gate set,
    which queues re-scoring) and may start retraining, once it is committed."""
    if study is not None and study.status == Study.Status.APPROVED and study.training_eligible:
        transaction.on_commit(_gate_set_update)
        transaction.on_commit(_retraining_maybe_start)


def _send_on_approval(study_id: int) -> None:
    try:
        pacs.dicom_sends_on_approval(study_id=study_id)
    except Exception:  # a DICOM node's trouble must never undo or hide an approval
        log.exception("queueing the sends of study %s after approval failed", study_id)


def study_approve(
    *,
    study_id: int,
    user: User,
    training_eligible: bool = True,
    client: str = "",
    expected_decisions: dict[int, str] | None = None,
) -> Study:
    """Approve a study (``review``); a training-eligible approval may start retraining."""
    study = review.study_approve(
        study_id=study_id,
        user=user,
        training_eligible=training_eligible,
        client=client,
        expected_decisions=expected_decisions,
    )
    _after_approval(study)
    if study is not None and study.status == Study.Status.APPROVED:
        # a clinician's approval goes to the planning systems (nodes with send_on_approval)
        transaction.on_commit(lambda: _send_on_approval(study.pk))
    return study


# --- ingest / import / pre-segmentation -> working mask -----------------------------
# The review step is handed in and runs inside the transaction that finishes the job.


def study_ingest(*, job_id: int) -> Study | None:
    """Ingest an uploaded study (``studies``); one with ground truth becomes an approved
    working mask (``review``) as the job finishes, and may start retraining."""
    study = studies.study_ingest(job_id=job_id, ground_truth_apply=review.study_ground_truth_apply)
    _after_approval(study)
    return study


def study_import(
    *,
    source: Path,
    ground_truth: Path | None = None,
    approved_by: User | None = None,
    training_eligible: bool = True,
    description: str = "",
) -> Study:
    """Import a study synchronously (``studies``); with ground truth it is approved
    (``review``) and may start retraining."""
    study = studies.study_import(
        source=source,
        ground_truth=ground_truth,
        approved_by=approved_by,
        training_eligible=training_eligible,
        description=description,
        ground_truth_apply=review.study_ground_truth_apply,
    )
    _after_approval(study)
    return study


def study_presegment(*, job_id: int) -> None:
    """Pre-segment a study (``studies``); the prediction becomes the working mask of a
    study nobody reviewed yet (``review``) as the job finishes."""
    studies.study_presegment(job_id=job_id, prediction_apply=review.study_prediction_apply)


# --- promotion -> re-pre-segmentation ------------------------------------------------


def _after_activation(*, version: ModelVersion) -> None:
    """Queue the release / re-pre-segmentation job once the activation is committed, and
    the new active version's score on the current gate set when it has none."""
    first_ever = model_version_never_activated(besides=version.pk)
    version_id = version.pk
    transaction.on_commit(
        lambda: queueing.send(tasks.model_version_activated_task, version_id, first_ever)
    )
    training.gate_scores_request(version_ids=[version_id])


def model_version_promote(
    *, version_id: int, user: User | None, override_reason: str = "", automatic: bool = False
) -> ModelVersion:
    """Promote a candidate (``registry``); the studies follow in a background job.

    Both sides must be scored on the current gate set: their scoring jobs are requested
    (idempotent) and committed first, so a 409 ``not_comparable`` leaves them queued."""
    active = registry_selectors.model_version_active()
    with transaction.atomic():
        training.gate_scores_request(
            version_ids=[version_id, *([active.pk] if active is not None else [])]
        )
    with transaction.atomic():
        version = registry.model_version_promote(
            version_id=version_id, user=user, override_reason=override_reason, automatic=automatic
        )
        _after_activation(version=version)
    return version


@transaction.atomic
def model_version_rollback(*, version_id: int, user: User | None, reason: str = "") -> ModelVersion:
    """Roll back to an earlier version (``registry``); the studies follow in a job."""
    version = registry.model_version_rollback(version_id=version_id, user=user, reason=reason)
    _after_activation(version=version)
    return version


def training_run_execute(*, run_id: int) -> None:
    """Train one run (``training``); a first model that went live by itself is followed
    by the studies like any promotion."""
    activated = training.training_run_execute(run_id=run_id)
    if activated is not None:
        _after_activation(version=activated)


def model_version_activated(*, version_id: int, first_ever: bool) -> None:
    """The job after an activation: on the first one, release the studies awaiting a
    model; then queue pre-segmentation of every unreviewed study with the version."""
    if first_ever:
        studies.studies_awaiting_model_enqueue()
    studies.studies_presegment_unreviewed(model_version_id=version_id)


# --- a planning system's structure set after the images --------------------------------


def late_structure_set(*, study_id: int, files: list[Path]) -> Job | None:
    """A pacs late-object hook: an RT Structure Set that arrives after its study was
    ingested becomes the study's ground truth (``LESIONLOOP_GTV_PATTERN``), by ingesting
    the study again with it, as long as nobody has started reviewing the study (ready
    or awaiting a model). Otherwise it is noted in the study's report and left alone.
    Returns the new ingest job, if any."""
    from pydicom import dcmread

    structure_sets = [
        f for f in files if str(dcmread(f, stop_before_pixels=True).get("Modality")) == "RTSTRUCT"
    ]
    if not structure_sets:
        return None
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study_id)
        if study.status not in (Study.Status.READY, Study.Status.AWAITING_MODEL):
            report = dict(study.report or {})
            message = (
                f"{len(structure_sets)} structure set(s) arrived while the study was "
                f"{study.status}; not applied as ground truth (import the study again to "
                "use them)"
            )
            report["warnings"] = [*report.get("warnings", []), message]
            # The viewer's ingest notes read the rows (when the report has them; older ones
            # are read from the warnings): a warning without its row went unseen.
            row = {
                "kind": "structure_set_not_applied",
                "severity": "warning",
                "message": message,
                "files": [f.name for f in structure_sets],
                "series": None,
            }
            if isinstance(report.get("rows"), list):
                report["rows"] = [*report["rows"], row]
            study.report = report
            study.save(update_fields=["report", "updated_at"])
            return None
        audit_record(
            event_type="study_reingest",
            study=study,
            files=[f.name for f in structure_sets],
            reason="structure set after the images",
        )
        return studies.study_reingest_with(study=study, files=structure_sets)
