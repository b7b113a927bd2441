"""Writes for studies: upload, ingest, pre-segmentation, jobs, recovery, import.

ml is imported lazily inside the functions that need it: the web process never loads
torch. Background work runs as ``Job`` rows claimed with a conditional update, so a
redelivered message finds its job taken or finished and does nothing.

A prediction or ground truth becomes the working mask in ``review``, a layer above:
ingest, import and pre-segmentation take that step as a callable (``PredictionApply``,
``GroundTruthApply``), which ``lesionloop.loop.flows`` hands in, and call it inside the
transaction that finishes the job.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import get_valid_filename

from lesionloop.audit.services import audit_record
from lesionloop.core import queueing
from lesionloop.core.exceptions import ClaimLost, DomainError
from lesionloop.core.heartbeat import Heartbeat
from lesionloop.core.text import clean_json, clean_text
from lesionloop.registry.models import ModelVersion
from lesionloop.registry.selectors import model_version_active

from . import storage
from .models import Job, Prediction, Study
from .priority import review_priority

log = logging.getLogger(__name__)

REVIEWED_STATUSES = {Study.Status.IN_REVIEW, Study.Status.APPROVED}


class PredictionApply(Protocol):
    """Makes a stored prediction the working mask of a locked, unreviewed study
    (``review.services.study_prediction_apply``)."""

    def __call__(
        self,
        *,
        study: Study,
        model_version: Any,
        labels_gz: bytes,
        lesions: list[dict[str, Any]],
        priority: float,
    ) -> Any: ...


class GroundTruthApply(Protocol):
    """Makes the prepared ground truth the approved working mask of a locked study
    (``review.services.study_ground_truth_apply``)."""

    def __call__(
        self, *, study: Study, approved_by: Any = None, training_eligible: bool = True
    ) -> Any: ...


# --- jobs ---------------------------------------------------------------------------
# A job is a row before it is a message: the row is the durable queue. A worker claims
# it (queued -> running, attempts + 1), beats while it works and finishes it in a
# transaction that first checks it still holds that attempt. ``jobs_sweep`` (run by the
# workers' sweeper, ``lesionloop.loop.sweeper``) queues again what a dead worker or a
# lost message left behind.


@dataclass(frozen=True)
class SweepCounts:
    requeued: int = 0  # running with a stale heartbeat -> queued, new message
    resent: int = 0  # queued, message lost -> message sent again
    failed: int = 0  # stale after the last allowed attempt -> failed


def job_create(*, study: Study, kind: str, model_version: ModelVersion | None = None) -> Job:
    """Create a job and enqueue its actor once the surrounding transaction commits.

    If the broker is down the job stays queued without a message (the upload still
    succeeds); the sweeper sends it once the broker is back."""
    job = Job.objects.create(study=study, kind=kind, model_version=model_version)
    transaction.on_commit(lambda: job_enqueue(job_id=job.pk, kind=kind))
    return job


def _job_actor(kind: str) -> Any:
    from . import tasks

    return tasks.study_ingest_task if kind == Job.Kind.INGEST else tasks.study_presegment_task


def job_enqueue(*, job_id: int, kind: str) -> str:
    """Send the job's message and record it; never raises (the message id or "")."""
    message_id = queueing.send(_job_actor(kind), job_id)
    Job.objects.filter(pk=job_id).update(message_id=message_id, enqueued_at=timezone.now())
    return message_id


def job_claim(*, job_id: int) -> Job | None:
    """Take a queued job (attempts + 1: the claim's fencing token); None if another
    worker has it or it is done. Running jobs are never taken over here: only the
    sweeper puts a job whose heartbeat stopped back to queued."""
    now = timezone.now()
    taken = Job.objects.filter(pk=job_id, state=Job.State.QUEUED).update(
        state=Job.State.RUNNING, claimed_at=now, heartbeat_at=now, attempts=F("attempts") + 1
    )
    if not taken:
        log.info("job %s already claimed or finished; ignoring the message", job_id)
        return None
    return Job.objects.select_related("study", "model_version").get(pk=job_id)


def job_heartbeat(job: Job) -> Heartbeat:
    """``with job_heartbeat(job):`` keeps the claimed job's heartbeat fresh."""

    def beat() -> bool:
        return bool(
            Job.objects.filter(pk=job.pk, state=Job.State.RUNNING, attempts=job.attempts).update(
                heartbeat_at=timezone.now()
            )
        )

    return Heartbeat(beat, every_s=settings.LESIONLOOP_JOB_HEARTBEAT_S)


def job_hold(job: Job) -> None:
    """Inside the transaction that finishes ``job``: lock its row and check this worker
    still holds the claim; ``ClaimLost`` (the transaction must roll back) otherwise."""
    held = (
        Job.objects.select_for_update()
        .filter(pk=job.pk, state=Job.State.RUNNING, attempts=job.attempts)
        .exists()
    )
    if not held:
        raise ClaimLost(f"job {job.pk}: attempt {job.attempts} was taken over")


def job_finish(*, job: Job, ok: bool, message: str = "") -> bool:
    """Finish the claimed attempt; False (nothing written) when the claim was lost."""
    return bool(
        Job.objects.filter(pk=job.pk, state=Job.State.RUNNING, attempts=job.attempts).update(
            state=Job.State.SUCCEEDED if ok else Job.State.FAILED,
            message=clean_text(message, max_len=4000),
            finished_at=timezone.now(),
        )
    )


def jobs_recover() -> int:
    """Re-enqueue unfinished jobs (a recovery hook: runs when the embedded worker starts).

    The embedded broker keeps messages in memory, so jobs queued or running when the
    process stopped have no message any more. Running ones are put back to queued:
    the hook runs before this process has claimed anything.
    """
    Job.objects.filter(state=Job.State.RUNNING).update(state=Job.State.QUEUED)
    jobs = list(Job.objects.filter(state=Job.State.QUEUED).values_list("pk", "kind"))
    for pk, kind in jobs:
        job_enqueue(job_id=pk, kind=kind)
    if jobs:
        log.info("re-enqueued %d unfinished jobs", len(jobs))
    return len(jobs)


def _stale(cutoff: datetime) -> Q:
    """No heartbeat since ``cutoff`` (a row claimed before heartbeats: by its claim)."""
    return Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, claimed_at__lt=cutoff)


def _job_requeue_stale(job: Job, *, cutoff: datetime) -> str:
    """Put one running job whose heartbeat stopped back to queued (or fail it after the
    last attempt): "requeued", "failed" or "" when its state changed meanwhile."""
    with transaction.atomic():
        stale = Job.objects.filter(
            _stale(cutoff), pk=job.pk, state=Job.State.RUNNING, attempts=job.attempts
        )
        if job.attempts >= settings.LESIONLOOP_JOB_MAX_ATTEMPTS:
            reason = (
                f"The worker running this {job.kind} job stopped {job.attempts} times "
                "(LESIONLOOP_JOB_MAX_ATTEMPTS); not trying again."
            )
            if not stale.update(state=Job.State.FAILED, message=reason, finished_at=timezone.now()):
                return ""
            unreviewed = Study.objects.filter(pk=job.study_id).exclude(status__in=REVIEWED_STATUSES)
            # no mask yet: failed; a working mask (a re-pre-segmentation): reviewable
            unreviewed.filter(revision_number=0).update(
                status=Study.Status.FAILED, status_reason=reason, updated_at=timezone.now()
            )
            unreviewed.filter(revision_number__gt=0, status=Study.Status.PROCESSING).update(
                status=Study.Status.READY, status_reason=reason, updated_at=timezone.now()
            )
            audit_record(event_type="job_failed", study=job.study_id, job=job.pk, reason=reason)
            return "failed"
        if not stale.update(state=Job.State.QUEUED, heartbeat_at=None, enqueued_at=timezone.now()):
            return ""
        audit_record(
            event_type="job_requeued",
            study=job.study_id,
            job=job.pk,
            kind=job.kind,
            attempts=job.attempts,
            reason="heartbeat stopped",
        )
        transaction.on_commit(lambda: job_enqueue(job_id=job.pk, kind=job.kind))
    return "requeued"


def _job_resend_lost(job: Job, *, cutoff: datetime) -> bool:
    """Send a queued job again when the broker no longer holds its message."""
    queue = _job_actor(job.kind).queue_name
    if queueing.message_live(queue, job.message_id):
        return False
    sent_before = Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=cutoff)
    if not Job.objects.filter(sent_before, pk=job.pk, state=Job.State.QUEUED).update(
        enqueued_at=timezone.now()
    ):
        return False  # claimed, or another sweeper just sent it
    log.info("job %s lost its message (%r); sending it again", job.pk, job.message_id)
    job_enqueue(job_id=job.pk, kind=job.kind)
    return True


def jobs_sweep() -> SweepCounts:
    """Queue again the jobs a dead worker or a lost message left behind (module notes)."""
    now = timezone.now()
    stale_cutoff = now - timedelta(seconds=settings.LESIONLOOP_JOB_STALE_S)
    outcomes = [
        _job_requeue_stale(job, cutoff=stale_cutoff)
        for job in Job.objects.filter(_stale(stale_cutoff), state=Job.State.RUNNING)
    ]
    resend_cutoff = now - timedelta(seconds=settings.LESIONLOOP_JOB_REQUEUE_S)
    lost = Job.objects.filter(state=Job.State.QUEUED, created_at__lt=resend_cutoff).filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=resend_cutoff)
    )
    resent = sum(_job_resend_lost(job, cutoff=resend_cutoff) for job in lost)
    return SweepCounts(
        requeued=outcomes.count("requeued"), resent=resent, failed=outcomes.count("failed")
    )


# --- upload -------------------------------------------------------------------------


def _copy_upload(src: UploadedFile, dest: Path, *, budget: list[int]) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    staged = getattr(src, "staged_path", None)
    if staged is not None:  # already streamed under STORAGE_ROOT: a rename, no copy
        budget[0] -= src.size or 0
        src.close()
        os.replace(staged, dest)
        return
    with dest.open("wb") as fh:
        for chunk in src.chunks():
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise DomainError(
                    f"The upload is larger than the limit of {settings.UPLOAD_MAX_BYTES} bytes.",
                    code="too_large",
                    status_code=413,
                )
            fh.write(chunk)


def _is_zip(f: UploadedFile) -> bool:
    if (f.name or "").lower().endswith(".zip"):
        return True
    try:
        pos = f.tell()
        head = f.read(4)
        f.seek(pos)
    except (OSError, ValueError):
        return False
    return head == b"PK\x03\x04"


def study_upload(
    *,
    files: list[UploadedFile],
    ground_truth: UploadedFile | None = None,
    user: User,
) -> Study:
    """Store an upload under ``studies/<id>/upload`` and queue its ingest. Returns at once."""
    if not files:
        raise DomainError("Send one or more DICOM files, or one zip, as 'files'.", code="no_files")
    total = sum(f.size or 0 for f in files) + (ground_truth.size if ground_truth else 0)
    if total > settings.UPLOAD_MAX_BYTES:
        raise DomainError(
            f"The upload ({total} bytes) is larger than the limit of "
            f"{settings.UPLOAD_MAX_BYTES} bytes.",
            code="too_large",
            status_code=413,
        )
    budget = [settings.UPLOAD_MAX_BYTES]
    with transaction.atomic():
        study = Study.objects.create(created_by=user, status=Study.Status.RECEIVED)
        target = storage.upload_dir(study.pk)
        try:
            if len(files) == 1 and _is_zip(files[0]):
                _copy_upload(files[0], target / "archive.zip", budget=budget)
            else:
                for i, f in enumerate(files):
                    name = get_valid_filename(Path(f.name or "file").name) or "file"
                    _copy_upload(f, target / "dicom" / f"{i:05d}_{name}", budget=budget)
            if ground_truth is not None:
                _copy_upload(ground_truth, target / "ground_truth.nii.gz", budget=budget)
        except BaseException:
            shutil.rmtree(storage.study_dir(study.pk), ignore_errors=True)
            raise
        audit_record(
            event_type="study_uploaded",
            actor=user,
            study=study,
            files=len(files),
            bytes=total,
            ground_truth=ground_truth is not None,
        )
        job_create(study=study, kind=Job.Kind.INGEST)
    return study


def study_reingest_with(*, study: Study, files: list[Path]) -> Job:
    """Ingest ``study`` (locked) again with ``files`` added to its upload (a late MR, the
    planning system's structure set after the images). Queues the job; the caller
    audits why."""
    target = storage.upload_dir(study.pk) / "dicom"
    for path in files:
        storage.link_or_copy(path, target / path.name)
    study.status = Study.Status.RECEIVED
    study.status_reason = "More objects received; ingesting again"
    study.save(update_fields=["status", "status_reason", "updated_at"])
    return job_create(study=study, kind=Job.Kind.INGEST)


def _upload_source(study_id: int) -> tuple[Path, Path | None]:
    up = storage.upload_dir(study_id)
    source = up / "archive.zip" if (up / "archive.zip").exists() else up / "dicom"
    gt = up / "ground_truth.nii.gz"
    return source, gt if gt.exists() else None


# --- ingest -------------------------------------------------------------------------


# What a failed study says when even its reason could not be stored.
SAFE_FAILURE_REASON = "Processing failed; the details could not be stored (see the server log)."


def _study_fail(
    *, study_id: int, reason: str, job: Job | None, unprepare: bool = False, **payload: Any
) -> None:
    """Mark the study failed with ``reason``; never raises for the database's sake.

    The reason and payload come from the upload (a DICOM tag in a message) and are
    cleaned first; if storing them still fails, the study is failed with
    ``SAFE_FAILURE_REASON`` instead, so no study stays ``processing``. ``unprepare``:
    the prepared files are removed and the row says so (a failure after publishing).
    """
    reason = clean_text(reason, max_len=4000) or SAFE_FAILURE_REASON
    try:
        with transaction.atomic():
            _study_fail_write(study_id=study_id, reason=reason, job=job, unprepare=unprepare)
            audit_record(event_type="study_failed", study=study_id, reason=reason, **payload)
        return
    except ClaimLost:
        log.warning("study %s: job %s was requeued; its failure is not stored", study_id, job)
        return
    except DatabaseError:
        log.exception("study %s: storing its failure failed; storing a safe reason", study_id)
    try:
        with transaction.atomic():
            _study_fail_write(
                study_id=study_id, reason=SAFE_FAILURE_REASON, job=job, unprepare=unprepare
            )
    except ClaimLost:
        return
    except DatabaseError:
        log.exception("study %s: even the safe failure could not be stored", study_id)
        return
    try:
        with transaction.atomic():
            audit_record(
                event_type="study_failed",
                study=study_id,
                reason=SAFE_FAILURE_REASON,
                code="internal",
            )
    except DatabaseError:
        log.exception("study %s: the failure could not be audited", study_id)


def _study_fail_write(*, study_id: int, reason: str, job: Job | None, unprepare: bool) -> None:
    """The failure's writes; ``ClaimLost`` first if ``job`` was requeued meanwhile
    (then the new attempt owns the study and its files)."""
    if job is not None and not job_finish(job=job, ok=False, message=reason):
        raise ClaimLost(f"job {job.pk}: attempt {job.attempts} was taken over")
    fields: dict[str, Any] = {"status": Study.Status.FAILED, "status_reason": reason}
    if unprepare:
        shutil.rmtree(storage.prepared_dir(study_id), ignore_errors=True)
        fields["prepared"] = False
    Study.objects.filter(pk=study_id).update(**fields, updated_at=timezone.now())


def _prepare(*, study_id: int, source: Path, ground_truth: Path | None) -> dict[str, Any]:
    """Build the prepared dir under a temporary name, precompress displays, publish."""
    from ml.imaging.pipeline import prepare_study

    target = storage.prepared_dir(study_id)
    tmp = storage.temp_dir_beside(target)
    try:
        prepare_study(
            source,
            tmp,
            grid=settings.LESIONLOOP_GRID,
            ground_truth=ground_truth,
            roi_pattern=settings.LESIONLOOP_GTV_PATTERN or None,
        )
        for channel in storage.DISPLAY_CHANNELS:
            volume = np.load(tmp / f"display_{channel}.npy", mmap_mode="r")
            storage.atomic_write_bytes(
                tmp / f"display_{channel}.i16.gz", storage.gzip_array(volume, dtype="int16")
            )
        info = json.loads((tmp / "study.json").read_text())
        storage.publish_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def _study_fields_from_info(info: dict[str, Any]) -> dict[str, Any]:
    """The study's fields from ``study.json``; every value read from the DICOM headers
    is cleaned (``core.text``): NUL, control characters and lone surrogates removed,
    lengths capped, non-finite numbers nulled."""
    grid = info.get("grid", {}) or {}
    dicom = clean_json(info.get("dicom", {}) or {}, max_str=1024)
    registration = clean_json(info.get("registration", {}) or {})
    return {
        "grid": clean_json(
            {
                "preset": grid.get("preset"),
                "shape_dhw": list(grid.get("shape_dhw", [])),
                "spacing_mm": list(grid.get("spacing_mm", [])),
                "origin_xyz_mm": list(grid.get("origin_xyz_mm", [])),
                "direction": list(grid.get("direction", [])),
            }
        ),
        "dicom": dicom,
        "report": clean_json(info.get("report", {}) or {}),
        "registration": registration,
        "registration_ok": bool(registration.get("ok", False)),
        "patient_label": clean_text(
            dicom.get("patient_id") or dicom.get("patient_name"), max_len=128
        ),
        "description": clean_text(dicom.get("study_description"), max_len=255),
        "prepared": True,
    }


def study_ingest(*, job_id: int, ground_truth_apply: GroundTruthApply) -> Study | None:
    """Ingest, register and pre-process an uploaded study, then queue pre-segmentation;
    an upload with ground truth is approved instead (``ground_truth_apply``, in the
    transaction that finishes the job).

    Returns the study once ingested; None when the job was taken or the study failed.
    """
    job = job_claim(job_id=job_id)
    if job is None:
        return None
    with job_heartbeat(job):
        return _ingest_claimed(job=job, apply=ground_truth_apply)


def _ingest_claimed(*, job: Job, apply: GroundTruthApply) -> Study | None:
    """The body of ``study_ingest`` once the job is claimed (its heartbeat running)."""
    from ml.imaging.errors import IngestError

    study_id = job.study_id
    Study.objects.filter(pk=study_id).update(
        status=Study.Status.PROCESSING,
        status_reason="Ingest and registration",
        updated_at=timezone.now(),
    )
    audit_record(event_type="ingest_started", study=study_id, job=job.pk)
    source, gt = _upload_source(study_id)
    started = time.monotonic()
    try:
        info = _prepare(study_id=study_id, source=source, ground_truth=gt)
    except IngestError as exc:
        _study_fail(
            study_id=study_id, reason=str(exc), job=job, code=exc.code, file=exc.file, tag=exc.tag
        )
        return None
    except Exception as exc:  # a bug or a broken disk: fail the study, keep the worker alive
        log.exception("ingest of study %s failed", study_id)
        _study_fail(
            study_id=study_id,
            reason=f"Processing failed unexpectedly ({type(exc).__name__}: {exc}).",
            job=job,
            code="internal",
        )
        return None
    try:
        return _ingest_commit(
            job=job, info=info, has_gt=gt is not None, started=started, apply=apply
        )
    except ClaimLost:
        log.warning("ingest job %s was requeued meanwhile; this attempt stores nothing", job.pk)
        return None
    except Exception as exc:  # noqa: BLE001 - the study must not stay "processing"
        log.exception("ingest of study %s could not be stored", study_id)
        _study_fail(
            study_id=study_id,
            reason=f"Processing failed unexpectedly ({type(exc).__name__}: {exc}).",
            job=job,
            unprepare=True,
            code="internal",
        )
        return None


def _ingest_commit(
    *, job: Job, info: dict[str, Any], has_gt: bool, started: float, apply: GroundTruthApply
) -> Study:
    """Store the ingested study and hand it on (ground truth or pre-segmentation), in
    the transaction that finishes the job."""
    fields = _study_fields_from_info(info)
    with transaction.atomic():
        job_hold(job)
        study = Study.objects.select_for_update().get(pk=job.study_id)
        for key, value in fields.items():
            setattr(study, key, value)
        study.save()
        audit_record(
            event_type="ingest_done",
            study=study,
            seconds=round(time.monotonic() - started, 2),
            grid=study.grid,
            report=study.report,
        )
        audit_record(
            event_type="registration_checked",
            study=study,
            ok=study.registration_ok,
            quality=study.registration.get("quality"),
            message=study.registration.get("message", ""),
        )
        if has_gt or info.get("has_ground_truth"):  # a NIfTI or the RTSTRUCT's GTVs
            apply(study=study, approved_by=study.created_by)
        else:
            study_presegment_or_wait(study=study)
        job_finish(job=job, ok=True)
    return study


def study_presegment_or_wait(
    *, study: Study, model_version: ModelVersion | None = None
) -> Job | None:
    """Queue pre-segmentation with ``model_version`` (default: the active one) or wait."""
    mv = model_version or model_version_active()
    if mv is None:
        study.status = Study.Status.AWAITING_MODEL
        study.status_reason = "No active model yet; pre-segmentation starts when one is promoted."
        study.save(update_fields=["status", "status_reason", "updated_at"])
        audit_record(event_type="awaiting_model", study=study)
        return None
    if study.status not in REVIEWED_STATUSES:
        # A study that already has a working mask stays reviewable (ready) meanwhile; if
        # someone opens it before the job ends, the new prediction is only kept aside.
        if not study.revision_number or study.status == Study.Status.FAILED:
            study.status = Study.Status.PROCESSING
        study.status_reason = f"Pre-segmentation with model {mv.name}"
        study.save(update_fields=["status", "status_reason", "updated_at"])
    audit_record(event_type="presegment_queued", study=study, model_version=mv)
    return job_create(study=study, kind=Job.Kind.PRESEGMENT, model_version=mv)


# --- pre-segmentation ---------------------------------------------------------------

_PREDICTORS: dict[tuple[str, float], Any] = {}


def _device() -> str:
    wanted = settings.LESIONLOOP_DEVICE
    if wanted != "auto":
        return wanted
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _predictor(model_version: ModelVersion) -> Any:
    """The model version's predictor, loaded once per worker process."""
    from ml.inference import EnsemblePredictor

    model_dir = storage.absolute(model_version.weights_dir)
    manifest = model_dir / "manifest.json"
    if not manifest.exists():
        raise FileNotFoundError(f"model {model_version.name}: no manifest.json in {model_dir}")
    key = (str(model_dir), manifest.stat().st_mtime)
    if key not in _PREDICTORS:
        _PREDICTORS.clear()  # one model in memory at a time
        _PREDICTORS[key] = EnsemblePredictor.from_dir(model_dir, device=_device())
    return _PREDICTORS[key]


def _predict(
    *, study: Study, model_version: ModelVersion
) -> tuple[Path, list[dict[str, Any]], float]:
    from ml.lesions import label_stats

    prepared = storage.prepared_dir(study.pk)
    model_input = np.load(prepared / "model_input.npy")
    spacing = tuple(float(s) for s in study.grid["spacing_mm"])
    started = time.monotonic()
    prediction = _predictor(model_version).predict(model_input, spacing)
    seconds = time.monotonic() - started
    labels = prediction.labels.astype(np.uint16)
    slices = label_stats(labels, spacing)
    lesions = []
    for s in prediction.lesions:
        row = {
            "label": int(s.label),
            "volume_vox": int(s.volume_vox),
            "volume_mm3": float(s.volume_mm3),
            "centroid_vox": [round(float(v), 3) for v in s.centroid_vox],
            "centroid_mm": [round(float(v), 3) for v in s.centroid_mm],
            "bbox": [int(v) for v in s.bbox],
            "largest_slice": slices.get(int(s.label), {}).get("largest_slice", 0),
            "longest_axial_diameter_mm": slices.get(int(s.label), {}).get(
                "longest_axial_diameter_mm"
            ),
            "longest_diameter_mm": slices.get(int(s.label), {}).get("longest_diameter_mm"),
            "mean_prob": float(s.mean_prob),
            "max_prob": float(s.max_prob),
            "disagreement": float(s.disagreement),
        }
        lesions.append(row)
    target = storage.study_dir(study.pk) / "predictions" / f"mv{model_version.pk}"
    tmp = storage.temp_dir_beside(target)
    try:
        (tmp / "labels.u16.gz").write_bytes(storage.gzip_array(labels, dtype="uint16"))
        np.save(tmp / "ensemble_prob.f16.npy", prediction.ensemble_prob.astype(np.float16))
        (tmp / "lesions.json").write_text(json.dumps({"lesions": lesions, "seconds": seconds}))
        storage.publish_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target, lesions, seconds


def _study_unreviewed(study: Study) -> bool:
    """No human has touched the working mask or any lesion: a new model may replace it."""
    if study.status in REVIEWED_STATUSES or not study.prepared:
        return False
    if study.revisions.filter(author__isnull=False).exists():
        return False
    return not study.lesions.exclude(decision="pending").exists()


def study_presegment(*, job_id: int, prediction_apply: PredictionApply) -> None:
    """Run the job's model on the study; make it the working mask if nobody reviewed yet
    (``prediction_apply``, in the transaction that finishes the job)."""
    job = job_claim(job_id=job_id)
    if job is None:
        return
    with job_heartbeat(job):
        try:
            _presegment_claimed(job=job, apply=prediction_apply)
        except ClaimLost:
            log.warning("pre-segmentation job %s was requeued meanwhile; stored nothing", job.pk)


def _presegment_claimed(*, job: Job, apply: PredictionApply) -> None:
    """The body of ``study_presegment`` once the job is claimed (its heartbeat running)."""
    study, mv = job.study, job.model_version
    audit_record(event_type="presegment_started", study=study, model_version=mv, job=job.pk)
    try:
        target, lesions, seconds = _predict(study=study, model_version=mv)
    except Exception as exc:
        log.exception("pre-segmentation of study %s with %s failed", study.pk, mv)
        reason = f"Pre-segmentation with model {mv.name} failed ({type(exc).__name__}: {exc})."
        if not job_finish(job=job, ok=False, message=reason):
            raise ClaimLost(f"job {job.pk}: attempt {job.attempts} was taken over") from exc
        with transaction.atomic():
            locked = Study.objects.select_for_update().get(pk=study.pk)
            if locked.revision_number == 0 and locked.status != Study.Status.APPROVED:
                locked.status = Study.Status.FAILED
                locked.status_reason = reason
                locked.save(update_fields=["status", "status_reason", "updated_at"])
        audit_record(event_type="presegment_failed", study=study, model_version=mv, reason=reason)
        return
    priority = review_priority(lesions)
    with transaction.atomic():
        job_hold(job)
        study = Study.objects.select_for_update().get(pk=study.pk)
        Prediction.objects.update_or_create(
            study=study,
            model_version=mv,
            defaults={
                "directory": storage.relative(target),
                "lesions": lesions,
                "priority": priority,
                "seconds": round(seconds, 3),
            },
        )
        audit_record(
            event_type="prediction_created",
            study=study,
            model_version=mv,
            lesions=len(lesions),
            priority=priority,
            seconds=round(seconds, 3),
        )
        if _study_unreviewed(study):
            apply(
                study=study,
                model_version=mv,
                labels_gz=(target / "labels.u16.gz").read_bytes(),
                lesions=lesions,
                priority=priority,
            )
        else:
            audit_record(
                event_type="prediction_kept_aside",
                study=study,
                model_version=mv,
                reason="the study is already under review; its working mask is unchanged",
            )
        job_finish(job=job, ok=True)


# --- services for the registry and training (platform B) ----------------------------


def studies_presegment_unreviewed(*, model_version_id: int) -> int:
    """Queue pre-segmentation with a (newly promoted) model of every unreviewed study.

    Earlier predictions stay (one ``Prediction`` per study and model version); studies
    that a clinician has opened, edited or approved keep their working mask.
    Returns the number of jobs queued.
    """
    from lesionloop.registry.models import ModelVersion

    mv = ModelVersion.objects.get(pk=model_version_id)
    busy = Job.objects.filter(
        kind=Job.Kind.PRESEGMENT,
        model_version=mv,
        state__in=[Job.State.QUEUED, Job.State.RUNNING],
    ).values("study_id")
    candidates = (
        Study.objects.filter(
            prepared=True,
            status__in=[Study.Status.READY, Study.Status.AWAITING_MODEL, Study.Status.FAILED],
        )
        .exclude(pk__in=busy)
        .exclude(predictions__model_version=mv)
        .exclude(revisions__author__isnull=False)
        .exclude(lesions__decision__in=["accepted", "rejected", "edited", "added"])
        .values_list("pk", flat=True)
    )
    ids = sorted(set(candidates))
    count = 0
    with transaction.atomic():
        for study in Study.objects.select_for_update().filter(pk__in=ids).order_by("pk"):
            if study.status != Study.Status.AWAITING_MODEL and not _study_unreviewed(study):
                continue  # someone opened it between the query and the lock
            study_presegment_or_wait(study=study, model_version=mv)
            count += 1
    return count


def studies_awaiting_model_enqueue() -> int:
    """Queue pre-segmentation with the active model of every study awaiting one."""
    mv = model_version_active()
    if mv is None:
        return 0
    count = 0
    with transaction.atomic():
        for study in (
            Study.objects.select_for_update()
            .filter(status=Study.Status.AWAITING_MODEL)
            .order_by("pk")
        ):
            study_presegment_or_wait(study=study, model_version=mv)
            count += 1
    return count


def study_import(
    *,
    source: Path,
    ground_truth: Path | None = None,
    approved_by: User | None = None,
    training_eligible: bool = True,
    description: str = "",
    ground_truth_apply: GroundTruthApply | None = None,
) -> Study:
    """Import a study synchronously (management command, demo data).

    With ``ground_truth`` (NIfTI on the CT grid) the study becomes an approved training
    case whose working mask (revision 1) is the ground truth (``ground_truth_apply``,
    required then); without it, it is queued for pre-segmentation like an upload.
    Raises ``IngestError`` for bad input, after marking the study failed.
    """
    from ml.imaging.errors import IngestError

    if ground_truth is not None and ground_truth_apply is None:
        raise TypeError(
            "study_import with ground_truth needs ground_truth_apply "
            "(lesionloop.loop.flows.study_import hands it in)"
        )
    source = Path(source)
    with transaction.atomic():
        study = Study.objects.create(
            created_by=approved_by,
            status=Study.Status.PROCESSING,
            source="import",
            description=clean_text(description, max_len=255),
        )
        audit_record(
            event_type="study_imported",
            actor=approved_by,
            study=study,
            source=str(source),
            ground_truth=str(ground_truth) if ground_truth else None,
        )
    try:
        info = _prepare(study_id=study.pk, source=source, ground_truth=ground_truth)
    except IngestError as exc:
        _study_fail(study_id=study.pk, reason=str(exc), job=None, code=exc.code)
        raise
    try:
        _keep_import_source(study.pk, source)
        return _import_commit(
            study_id=study.pk,
            info=info,
            description=description,
            has_truth=ground_truth is not None or bool(info.get("has_ground_truth")),
            approved_by=approved_by,
            training_eligible=training_eligible,
            apply=ground_truth_apply,
        )
    except Exception as exc:
        log.exception("import of study %s could not be stored", study.pk)
        _study_fail(
            study_id=study.pk,
            reason=f"Import failed unexpectedly ({type(exc).__name__}: {exc}).",
            job=None,
            unprepare=True,
            code="internal",
        )
        raise


def _import_commit(
    *,
    study_id: int,
    info: dict[str, Any],
    description: str,
    has_truth: bool,
    approved_by: User | None,
    training_eligible: bool,
    apply: GroundTruthApply | None,
) -> Study:
    fields = _study_fields_from_info(info)
    if description:
        fields["description"] = clean_text(description, max_len=255)
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study_id)
        for key, value in fields.items():
            setattr(study, key, value)
        study.save()
        audit_record(event_type="ingest_done", study=study, grid=study.grid, report=study.report)
        if has_truth and apply is not None:  # checked on entry for a NIfTI
            apply(study=study, approved_by=approved_by, training_eligible=training_eligible)
        else:
            study_presegment_or_wait(study=study)
    study.refresh_from_db()
    return study


def _keep_import_source(study_id: int, source: Path) -> None:
    """Keep the imported DICOM where an upload keeps it (``dicom/...`` or ``archive.zip``):
    the RTSTRUCT / SEG exports reference the original planning-CT slices."""
    upload = storage.upload_dir(study_id)
    if upload.exists():
        return
    tmp = storage.temp_dir_beside(upload)
    if source.is_dir():
        shutil.copytree(source, tmp / "dicom")
    else:
        shutil.copy2(source, tmp / "archive.zip")
    storage.publish_dir(tmp, upload)
