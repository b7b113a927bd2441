"""Writes of the DICOM network: received objects and their completion into studies,
remote nodes, retrieves (C-FIND + C-MOVE) and contour sends (C-STORE SCU).

A received study goes ``receiving -> ingesting -> done`` (``failed`` when it cannot be
turned into a study). The listener writes each object to a staging folder
(``pacs/incoming/<StudyInstanceUID>/<SOPInstanceUID>.dcm``) and bumps the row; a study
is complete when nothing new arrived for ``LESIONLOOP_DICOM_QUIET_SECONDS``, and the
completion loop claims it with a conditional update and hands the files to
``studies`` exactly like an upload. Everything needed is on disk and in rows, so a
restarted listener loses nothing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from lesionloop.audit.services import audit_record
from lesionloop.core import queueing
from lesionloop.core.exceptions import Conflict, DomainError
from lesionloop.studies import storage
from lesionloop.studies.models import Job, Study
from lesionloop.studies.services import job_create, study_reingest_with

from . import network, staging
from .models import DicomSend, ReceivedStudy, RemoteNode, Retrieve

log = logging.getLogger(__name__)

# A claim whose process vanished may be taken again after this long.
STALE_CLAIM = timedelta(minutes=15)
SEND_MAX_ATTEMPTS = 5


# --- staging ---------------------------------------------------------------------------


def staging_root() -> Path:
    return storage.storage_root() / "pacs" / "incoming"


def staging_dir(study_instance_uid: str) -> Path:
    return staging_root() / study_instance_uid


def _object_name(sop_instance_uid: str) -> str:
    return f"{sop_instance_uid}.dcm"


def _late_dir(study_id: int) -> Path:
    return storage.upload_dir(study_id) / "late"


# An association's row counters and arrival time are written at most this often (and
# when it is released), not once per object; the first object of a study in an
# association updates its row at once.
RECEIVE_FLUSH_SECONDS = 0.5


@dataclass
class _Pending:
    row_id: int
    study_id: int | None
    objects: int = 0
    bytes: int = 0
    last_arrival: datetime | None = None
    flushed: float = 0.0


class ReceiveBatch:
    """What one association received: each object is staged before ``store`` returns
    (so before the success status is sent), by the listener's ``syncer`` (which
    fsyncs it at once or in its next group fsync, ``LESIONLOOP_DICOM_FSYNC``; see
    ``staging``), or fsynced at once without one. The rows' counters and ``last_arrival``
    are written at the first object of each study, then at most every
    ``RECEIVE_FLUSH_SECONDS`` and by ``flush()`` (the listener flushes when the peer
    releases or aborts). The files are the truth: a crash before a flush loses nothing
    (``received_staging_recover`` puts such studies back to ``receiving``)."""

    def __init__(self, calling_ae: str = "", *, syncer: staging.StagingSyncer | None = None):
        self.calling_ae = calling_ae[:16]
        self.syncer = syncer
        self._rows: dict[str, _Pending] = {}

    def store(self, received: network.Received) -> bool:
        """Stage one object; False when it was already here (same SOPInstanceUID)."""
        uid = received.study_instance_uid
        self.calling_ae = received.calling_ae[:16]
        pending = self._rows.get(uid)
        first = pending is None
        if pending is None:
            row = _received_row(
                uid=uid,
                calling_ae=received.calling_ae,
                patient_id=received.patient_id,
                now=timezone.now(),
            )
            pending = self._rows[uid] = _Pending(row_id=row.pk, study_id=row.study_id)
        name = _object_name(received.sop_instance_uid)
        target = staging_dir(uid) / name
        known = target.exists() or (
            pending.study_id is not None
            and any(
                (base / name).exists()
                for base in (
                    storage.upload_dir(pending.study_id) / "dicom",
                    _late_dir(pending.study_id),
                )
            )
        )
        if not known:
            # another association may be storing the same object right now: one wins
            known = not self._write(target, received)
        if not known:
            pending.objects += 1
            pending.bytes += received.size
        pending.last_arrival = timezone.now()
        if first or time.monotonic() - pending.flushed >= RECEIVE_FLUSH_SECONDS:
            self._flush_one(pending)
        return not known

    def _write(self, target: Path, received: network.Received) -> bool:
        """Stage one object; False when it was there already."""
        chunks = (received.meta, received.dataset)
        if self.syncer is None:
            return staging.object_write(target, chunks, sync=True)
        return self.syncer.write(target, chunks)

    def flush(self) -> None:
        for pending in self._rows.values():
            if pending.last_arrival is not None:
                self._flush_one(pending)

    def _flush_one(self, pending: _Pending) -> None:
        ReceivedStudy.objects.filter(pk=pending.row_id).update(
            last_arrival=pending.last_arrival,
            status=ReceivedStudy.Status.RECEIVING,
            calling_ae=self.calling_ae,
            object_count=F("object_count") + pending.objects,
            bytes=F("bytes") + pending.bytes,
        )
        pending.objects = pending.bytes = 0
        pending.last_arrival = None
        pending.flushed = time.monotonic()
        # completion may have attached the study meanwhile: duplicates are checked there
        pending.study_id = (
            ReceivedStudy.objects.filter(pk=pending.row_id).values_list("study_id", flat=True)
        ).first()


def received_object_store(*, received: network.Received) -> bool:
    """Stage one received object (durably, named by SOPInstanceUID) and count it.

    Returns False when the object was already here (same SOPInstanceUID): it is stored
    once. The row goes (back) to ``receiving`` so completion waits for the quiet period.
    The listener uses a ``ReceiveBatch`` per association instead.
    """
    batch = ReceiveBatch(received.calling_ae)
    stored = batch.store(received)
    batch.flush()
    return stored


def received_staging_recover() -> list[int]:
    """At listener start: staged objects whose row is missing or not ``receiving`` (the
    listener died between staging and counting, or before completion removed the
    staging names) are put back in line for completion. Names already in the row's
    study are removed. The ids of the rows put back."""
    from pydicom import dcmread

    root = staging_root()
    back: list[int] = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        for tmp in folder.glob(".*.tmp"):  # a write the crash interrupted (never answered)
            tmp.unlink(missing_ok=True)
        files = sorted(folder.glob("*.dcm"))
        row = ReceivedStudy.objects.filter(study_instance_uid=folder.name).first()
        if row is not None and row.study_id is not None:
            done = {
                p.name
                for base in (storage.upload_dir(row.study_id) / "dicom", _late_dir(row.study_id))
                if base.is_dir()
                for p in base.iterdir()
            }
            _unstage([p for p in files if p.name in done])
            files = [p for p in files if p.name not in done]
        if not files or (row is not None and row.status == ReceivedStudy.Status.RECEIVING):
            continue
        now = timezone.now()
        if row is None:
            header = dcmread(files[0], stop_before_pixels=True, specific_tags=[(0x10, 0x20)])
            row = _received_row(
                uid=folder.name, calling_ae="", patient_id=str(header.get("PatientID", "")), now=now
            )
            ReceivedStudy.objects.filter(pk=row.pk).update(
                object_count=len(files), bytes=sum(p.stat().st_size for p in files)
            )
        ReceivedStudy.objects.filter(pk=row.pk).update(
            status=ReceivedStudy.Status.RECEIVING, last_arrival=now
        )
        log.warning("%d staged objects of %s put back for completion", len(files), folder.name)
        back.append(row.pk)
    return back


def association_refused_record(*, calling_ae: str, address: str, reason: str) -> None:
    """Audit an association (or connection) the listener refused: who tried, from where."""
    audit_record(
        event_type="dicom_association_refused",
        actor_label=f"dicom:{calling_ae or address}"[:150],
        calling_ae=calling_ae,
        address=address,
        reason=reason,
        called_ae=settings.LESIONLOOP_DICOM_AE_TITLE,
    )


def _received_row(*, uid: str, calling_ae: str, patient_id: str, now: datetime) -> ReceivedStudy:
    row = ReceivedStudy.objects.filter(study_instance_uid=uid).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            return ReceivedStudy.objects.create(
                study_instance_uid=uid,
                calling_ae=calling_ae[:16],
                patient_id=patient_id[:64],
                first_arrival=now,
                last_arrival=now,
            )
    except IntegrityError:  # another association created it first
        return ReceivedStudy.objects.get(study_instance_uid=uid)


# --- completion ------------------------------------------------------------------------


def _pair_window() -> timedelta:
    return timedelta(hours=settings.LESIONLOOP_DICOM_PAIR_HOURS)


def received_studies_complete(
    *, quiet_seconds: float | None = None, syncer: staging.StagingSyncer | None = None
) -> list[int]:
    """Complete every received study quiet for ``quiet_seconds``; the row ids completed.

    The planning CT and the MR are usually two DICOM studies of one patient: rows of
    the same PatientID that are due together become one LesionLoop study. ``syncer``:
    the listener's, which knows what is on disk already (else everything is fsynced).
    """
    quiet = settings.LESIONLOOP_DICOM_QUIET_SECONDS if quiet_seconds is None else quiet_seconds
    now = timezone.now()
    due = ReceivedStudy.objects.filter(
        Q(status=ReceivedStudy.Status.RECEIVING, last_arrival__lte=now - timedelta(seconds=quiet))
        | Q(status=ReceivedStudy.Status.INGESTING, claimed_at__lt=now - STALE_CLAIM)
    ).order_by("last_arrival", "pk")
    # a patient whose other study is still arriving (the MR after the CT) waits for it
    busy = set(
        ReceivedStudy.objects.filter(
            status=ReceivedStudy.Status.RECEIVING, last_arrival__gt=now - timedelta(seconds=quiet)
        )
        .exclude(patient_id="")
        .values_list("patient_id", flat=True)
    )
    groups: dict[str, list[int]] = {}
    for pk, patient_id in due.values_list("pk", "patient_id"):
        if patient_id not in busy:
            groups.setdefault(patient_id or f"row:{pk}", []).append(pk)
    done: list[int] = []
    for ids in groups.values():
        done += received_group_complete(received_ids=ids, quiet_seconds=quiet, syncer=syncer)
    return done


def _claim(received_id: int, quiet: float) -> ReceivedStudy | None:
    now = timezone.now()
    taken = (
        ReceivedStudy.objects.filter(pk=received_id)
        .filter(
            Q(
                status=ReceivedStudy.Status.RECEIVING,
                last_arrival__lte=now - timedelta(seconds=quiet),
            )
            | Q(status=ReceivedStudy.Status.INGESTING, claimed_at__lt=now - STALE_CLAIM)
        )
        .update(status=ReceivedStudy.Status.INGESTING, claimed_at=now)
    )
    return ReceivedStudy.objects.get(pk=received_id) if taken else None


def _release(rows: list[ReceivedStudy], status: str, message: str = "") -> None:
    """End the claims, unless an object arrived meanwhile (the row is receiving again)."""
    ReceivedStudy.objects.filter(
        pk__in=[r.pk for r in rows], status=ReceivedStudy.Status.INGESTING
    ).update(status=status, message=message[:4000])


def _unstage(files: list[Path]) -> None:
    for path in files:
        path.unlink(missing_ok=True)


def _ingest_busy(study: Study) -> bool:
    return Job.objects.filter(
        study=study, kind=Job.Kind.INGEST, state__in=[Job.State.QUEUED, Job.State.RUNNING]
    ).exists()


def _partner_study_id(rows: list[ReceivedStudy]) -> int | None:
    """The study of this patient's other received DICOM study (e.g. the CT for a late MR)."""
    own = next((r.study_id for r in rows if r.study_id), None)
    if own is not None:
        return own
    patients = {r.patient_id for r in rows if r.patient_id}
    if not patients:
        return None
    return (
        ReceivedStudy.objects.filter(
            patient_id__in=patients,
            study__isnull=False,
            last_arrival__gte=timezone.now() - _pair_window(),
        )
        .exclude(pk__in=[r.pk for r in rows])
        .order_by("-last_arrival")
        .values_list("study_id", flat=True)
        .first()
    )


def received_study_complete(*, received_id: int, quiet_seconds: float | None = None) -> bool:
    """Complete one received study (see ``received_group_complete``)."""
    return bool(received_group_complete(received_ids=[received_id], quiet_seconds=quiet_seconds))


def received_group_complete(
    *,
    received_ids: list[int],
    quiet_seconds: float | None = None,
    syncer: staging.StagingSyncer | None = None,
) -> list[int]:
    """Turn quiet received studies of one patient into a Study + ingest job, exactly like
    an upload; or hand late objects to the patient's existing study: its ingest runs
    again if it failed (the MR came late), else they are recorded in its report.

    Idempotent: each row is claimed with a conditional update; files are linked into the
    study before the staging names are removed (after commit), and a file already in the
    study is a duplicate. Returns the ids of the rows this call completed.
    """
    quiet = settings.LESIONLOOP_DICOM_QUIET_SECONDS if quiet_seconds is None else quiet_seconds
    rows = [row for row in (_claim(pk, quiet) for pk in sorted(received_ids)) if row]
    if not rows:
        return []
    files = sorted(
        (p for row in rows for p in staging_dir(row.study_instance_uid).glob("*.dcm")),
        key=lambda p: p.name,
    )
    study_id = _partner_study_id(rows)
    if not files:
        _release(
            rows,
            ReceivedStudy.Status.DONE if study_id else ReceivedStudy.Status.FAILED,
            "" if study_id else "no object could be stored",
        )
        return [r.pk for r in rows]
    try:
        # a study is on disk before it is completed, whatever LESIONLOOP_DICOM_FSYNC says
        if syncer is None:
            staging.paths_sync(files)
        else:
            syncer.study_sync(files)
        with transaction.atomic():
            study = Study.objects.select_for_update().filter(pk=study_id).first()
            if study is None:
                study = _study_from_received(rows=rows, files=files)
                outcome = "ingest queued"
            elif study.status == Study.Status.FAILED and not study.prepared:
                _study_reingest(rows=rows, study=study, files=files)
                outcome = "ingest queued again"
            elif _ingest_busy(study):
                # The ingest of the first objects has not finished: try again next round.
                ReceivedStudy.objects.filter(pk__in=[r.pk for r in rows]).update(
                    status=ReceivedStudy.Status.RECEIVING
                )
                return []
            else:
                _late_objects_attach(rows=rows, study=study, files=files)
                outcome = "late objects kept"
            transaction.on_commit(lambda: _unstage(files))
    except Exception as exc:
        log.exception("completion of received studies %s failed", received_ids)
        _release(rows, ReceivedStudy.Status.FAILED, f"{type(exc).__name__}: {exc}")
        return [r.pk for r in rows]
    _release(rows, ReceivedStudy.Status.DONE)
    log.info(
        "received study complete after %ss quiet: StudyInstanceUID sha256 %s, %d objects"
        " -> study %d, %s",
        quiet,
        ", ".join(sorted(uid_digest(r.study_instance_uid) for r in rows)),
        len(files),
        study.pk,
        outcome,
    )
    return [r.pk for r in rows]


def uid_digest(uid: str) -> str:
    """The first 12 hex digits of a DICOM UID's SHA-256: logs name a received study by
    this, not by its UID (a UID identifies the patient's examination; the audit trail and
    the ``ReceivedStudy`` row keep the UID itself). ``sha256sum`` of the UID finds it."""
    return hashlib.sha256(uid.encode("utf-8")).hexdigest()[:12]


def _rows_attach(rows: list[ReceivedStudy], study: Study) -> None:
    ReceivedStudy.objects.filter(pk__in=[r.pk for r in rows]).update(
        study=study, completions=F("completions") + 1
    )


def _received_audit(
    *, rows: list[ReceivedStudy], study: Study, files: list[Path], **extra: Any
) -> None:
    calling = sorted({r.calling_ae for r in rows})
    audit_record(
        event_type="study_received",
        study=study,
        actor_label=f"dicom:{','.join(calling)}"[:150],
        calling_ae=",".join(calling),
        study_instance_uids=[r.study_instance_uid for r in rows],
        objects=len(files),
        bytes=sum(p.stat().st_size for p in files),
        **extra,
    )


def _linked_sync(target: Path, files: list[Path]) -> None:
    """The study's names for ``files`` (links, or copies on another file system) on
    disk before the transaction that records them commits and the staging names go;
    so are the folders on the way (``upload/dicom`` is new for a new study). A hard
    link shares the staged file's data, fsynced already: only its folder needs it."""
    names = [target / p.name for p in files]
    copies = [p for p in names if p.stat().st_nlink == 1]
    staging.paths_sync(copies)
    if names:
        staging.fsync_path(target)
    root = storage.storage_root()
    for folder in target.parents:
        if folder == root or root not in folder.parents:
            break
        staging.fsync_path(folder)


def _study_from_received(*, rows: list[ReceivedStudy], files: list[Path]) -> Study:
    study = Study.objects.create(status=Study.Status.RECEIVED, source="dicom")
    target = storage.upload_dir(study.pk) / "dicom"
    for path in files:
        storage.link_or_copy(path, target / path.name)
    _linked_sync(target, files)
    _rows_attach(rows, study)
    _received_audit(rows=rows, study=study, files=files)
    job_create(study=study, kind=Job.Kind.INGEST)
    return study


def _study_reingest(*, rows: list[ReceivedStudy], study: Study, files: list[Path]) -> None:
    """The study's ingest failed (e.g. the MR came late): ingest it again with everything."""
    study_reingest_with(study=study, files=files)
    _linked_sync(storage.upload_dir(study.pk) / "dicom", files)
    _rows_attach(rows, study)
    _received_audit(rows=rows, study=study, files=files, reingest=True)


def _late_objects_attach(*, rows: list[ReceivedStudy], study: Study, files: list[Path]) -> None:
    """Objects after a successful ingest are kept beside the upload and listed in the
    study's report; hooks (``LESIONLOOP_DICOM_LATE_OBJECT_HOOKS``, e.g. an RTSTRUCT
    ground-truth import) get them once the transaction commits."""
    from pydicom import dcmread

    target = _late_dir(study.pk)
    late = []
    for path in files:
        storage.link_or_copy(path, target / path.name)
        ds = dcmread(target / path.name, stop_before_pixels=True)
        late.append(
            {
                "sop_instance_uid": str(ds.SOPInstanceUID),
                "sop_class_uid": str(ds.SOPClassUID),
                "modality": str(ds.get("Modality", "")),
                "series_instance_uid": str(ds.get("SeriesInstanceUID", "")),
                "received_at": timezone.now().isoformat(),
            }
        )
    _linked_sync(target, files)
    report = dict(study.report or {})
    report["late_objects"] = [*report.get("late_objects", []), *late]
    study.report = report
    study.save(update_fields=["report", "updated_at"])
    _rows_attach(rows, study)
    _received_audit(rows=rows, study=study, files=files, late=True)
    paths = [target / p.name for p in files]
    study_id = study.pk
    for dotted in settings.LESIONLOOP_DICOM_LATE_OBJECT_HOOKS:
        hook = import_string(dotted)
        transaction.on_commit(lambda hook=hook: hook(study_id=study_id, files=paths))


# --- remote nodes ----------------------------------------------------------------------


def remote_node_create(
    *,
    name: str,
    ae_title: str,
    host: str,
    port: int,
    can_query: bool = False,
    can_store: bool = False,
    send_on_approval: bool = False,
    enabled: bool = True,
    user: Any = None,
) -> RemoteNode:
    if RemoteNode.objects.filter(name=name).exists():
        raise Conflict(f"A node named {name!r} exists already.", code="node_exists")
    node = RemoteNode.objects.create(
        name=name,
        ae_title=ae_title,
        host=host,
        port=port,
        can_query=can_query,
        can_store=can_store,
        send_on_approval=send_on_approval,
        enabled=enabled,
    )
    audit_record(
        event_type="dicom_node_created",
        actor=user,
        node=name,
        ae_title=ae_title,
        host=host,
        port=port,
    )
    return node


def _peer(node: RemoteNode) -> network.Peer:
    return network.Peer(ae_title=node.ae_title, host=node.host, port=node.port)


def _our_ae() -> str:
    return settings.LESIONLOOP_DICOM_AE_TITLE


def _require_query(node: RemoteNode) -> None:
    if not node.enabled or not node.can_query:
        raise Conflict(f"Node {node.name} is not enabled for queries.", code="node_cannot_query")


def pacs_find(
    *, node: RemoteNode, patient_id: str = "", accession_number: str = ""
) -> list[dict[str, str]]:
    """Study-level C-FIND on ``node``; 502 ``dicom_network`` when the node fails."""
    _require_query(node)
    if not patient_id and not accession_number:
        raise DomainError("Give a patient ID or an accession number.", code="no_query")
    try:
        return network.find_studies(
            _peer(node),
            calling_ae=_our_ae(),
            patient_id=patient_id,
            accession_number=accession_number,
        )
    except (network.DicomNetworkError, OSError) as exc:
        raise DomainError(str(exc), code="dicom_network", status_code=502) from None


# --- retrieve (C-FIND + C-MOVE, a job) -------------------------------------------------


def retrieve_create(
    *,
    node: RemoteNode,
    patient_id: str = "",
    accession_number: str = "",
    study_instance_uid: str = "",
    user: Any = None,
) -> Retrieve:
    """Queue a fetch from ``node`` into our listener (C-MOVE to our AE title)."""
    _require_query(node)
    if not (patient_id or accession_number or study_instance_uid):
        raise DomainError(
            "Give a patient ID, an accession number or a study instance UID.", code="no_query"
        )
    retrieve = Retrieve.objects.create(
        node=node,
        patient_id=patient_id,
        accession_number=accession_number,
        study_instance_uid=study_instance_uid,
        requested_by=user if getattr(user, "is_authenticated", False) else None,
    )
    audit_record(
        event_type="dicom_retrieve_requested",
        actor=user,
        node=node.name,
        patient_id=patient_id,
        accession_number=accession_number,
        study_instance_uid=study_instance_uid,
        retrieve=retrieve.pk,
    )
    retrieve_id = retrieve.pk
    transaction.on_commit(lambda: _retrieve_enqueue(retrieve_id))
    return retrieve


def _retrieve_enqueue(retrieve_id: int) -> None:
    from . import tasks

    queueing.send(tasks.pacs_retrieve_task, retrieve_id)  # never raises: the sweeper resends


def _claim_job(model: type[Retrieve] | type[DicomSend], pk: int, queued: str, running: str) -> bool:
    """Claim a queued row (or one whose claim went stale: a worker died) atomically, with
    a conditional update; True when this worker took it."""
    now = timezone.now()
    taken = (
        model.objects.filter(pk=pk)
        .filter(Q(status=queued) | Q(status=running, claimed_at__lt=now - STALE_CLAIM))
        .update(status=running, claimed_at=now, attempts=F("attempts") + 1)
    )
    return bool(taken)


def retrieve_execute(*, retrieve_id: int) -> Retrieve | None:
    """Run a queued retrieve: find the studies, move each to us. None if already taken."""
    if not _claim_job(Retrieve, retrieve_id, Retrieve.Status.QUEUED, Retrieve.Status.RUNNING):
        return None
    retrieve = Retrieve.objects.select_related("node").get(pk=retrieve_id)
    peer = _peer(retrieve.node)
    results: list[dict[str, Any]] = []
    try:
        if retrieve.study_instance_uid:
            uids = [retrieve.study_instance_uid]
        else:
            found = network.find_studies(
                peer,
                calling_ae=_our_ae(),
                patient_id=retrieve.patient_id,
                accession_number=retrieve.accession_number,
            )
            uids = [f["StudyInstanceUID"] for f in found if f["StudyInstanceUID"]]
        for uid in uids:
            outcome = network.move_study(
                peer, calling_ae=_our_ae(), study_instance_uid=uid, destination=_our_ae()
            )
            results.append({"study_instance_uid": uid, **outcome})
    except (network.DicomNetworkError, OSError) as exc:
        Retrieve.objects.filter(pk=retrieve_id).update(
            status=Retrieve.Status.FAILED,
            studies=results,
            error=str(exc)[:4000],
            finished_at=timezone.now(),
        )
        audit_record(
            event_type="dicom_retrieve_failed",
            node=retrieve.node.name,
            retrieve=retrieve_id,
            error=str(exc),
        )
        return Retrieve.objects.get(pk=retrieve_id)
    failed = [r for r in results if r.get("failed")]
    Retrieve.objects.filter(pk=retrieve_id).update(
        status=Retrieve.Status.FAILED if failed else Retrieve.Status.DONE,
        studies=results,
        error=f"{len(failed)} studies had failed sub-operations" if failed else "",
        finished_at=timezone.now(),
    )
    audit_record(
        event_type="dicom_retrieved", node=retrieve.node.name, retrieve=retrieve_id, studies=results
    )
    return Retrieve.objects.get(pk=retrieve_id)


# --- send (C-STORE SCU of the approved contours) ---------------------------------------


def _require_store(node: RemoteNode) -> None:
    if not node.enabled or not node.can_store:
        raise Conflict(f"Node {node.name} does not accept contours.", code="node_cannot_store")


def dicom_send_create(
    *,
    study_id: int,
    node: RemoteNode,
    formats: list[str],
    user: Any = None,
    automatic: bool = False,
) -> list[DicomSend]:
    """Queue the approved contours of a study for ``node``, one send per format."""
    _require_store(node)
    study = Study.objects.filter(pk=study_id).first()
    if study is None:
        raise DomainError("No such study.", code="not_found", status_code=404)
    if study.status != Study.Status.APPROVED:
        raise Conflict("Only an approved study's contours can be sent.", code="not_approved")
    unknown = sorted(set(formats) - set(DicomSend.Format.values))
    if unknown or not formats:
        raise DomainError(f"Formats must be among {DicomSend.Format.values}.", code="invalid")
    sends = []
    for fmt in dict.fromkeys(formats):
        send = DicomSend.objects.create(
            node=node,
            study=study,
            revision=study.revision_number,
            format=fmt,
            automatic=automatic,
            requested_by=user if getattr(user, "is_authenticated", False) else None,
        )
        send_id = send.pk
        transaction.on_commit(lambda send_id=send_id: _send_enqueue(send_id))
        sends.append(send)
    return sends


def _send_enqueue(send_id: int) -> None:
    from . import tasks

    queueing.send(tasks.dicom_send_task, send_id)  # never raises: the sweeper resends


# Longer than the send actor's largest backoff (10 min): a queued row untouched for this
# long has no message left to run it.
PACS_RESEND_AFTER = timedelta(minutes=12)


def pacs_rows_sweep(*, now: datetime | None = None) -> int:
    """Send again the queued retrieves and sends whose message was lost (a broker crash, a
    request made while the broker was down), and those whose worker died mid-claim
    (``STALE_CLAIM``). Extra messages are harmless: each row is claimed atomically
    (``_claim_job``). Returns how many messages were sent."""
    now = now or timezone.now()
    cutoff = now - PACS_RESEND_AFTER
    stale = now - STALE_CLAIM
    retrieves = Retrieve.objects.filter(
        Q(status=Retrieve.Status.QUEUED, created_at__lt=cutoff)
        | Q(status=Retrieve.Status.RUNNING, claimed_at__lt=stale)
    ).values_list("pk", flat=True)
    sends = DicomSend.objects.filter(
        Q(status=DicomSend.Status.QUEUED, updated_at__lt=cutoff)
        | Q(status=DicomSend.Status.SENDING, claimed_at__lt=stale)
    ).values_list("pk", flat=True)
    for pk in retrieves:
        _retrieve_enqueue(pk)
    for pk in sends:
        _send_enqueue(pk)
    return len(retrieves) + len(sends)


def dicom_sends_on_approval(*, study_id: int) -> list[DicomSend]:
    """Queue RTSTRUCT and SEG for every enabled node with ``send_on_approval``."""
    sends: list[DicomSend] = []
    nodes = RemoteNode.objects.filter(enabled=True, can_store=True, send_on_approval=True)
    with transaction.atomic():
        for node in nodes.order_by("pk"):
            sends += dicom_send_create(
                study_id=study_id, node=node, formats=["rtstruct", "seg"], automatic=True
            )
    return sends


def dicom_send_retry(*, send_id: int, user: Any = None) -> DicomSend:
    """Queue a failed send again (a fresh set of attempts)."""
    updated = DicomSend.objects.filter(pk=send_id, status=DicomSend.Status.FAILED).update(
        status=DicomSend.Status.QUEUED, attempts=0, error=""
    )
    if not updated:
        raise Conflict("Only a failed send can be retried.", code="not_failed")
    transaction.on_commit(lambda: _send_enqueue(send_id))
    return DicomSend.objects.get(pk=send_id)


class SendRetryable(Exception):
    """A send attempt failed in a way another attempt may fix (the actor retries)."""


def dicom_send_execute(*, send_id: int) -> DicomSend | None:
    """One attempt: export (review's exporters) and C-STORE to the node.

    None when the send is not queued (taken, finished). A network failure or a remote
    failure status leaves it queued and raises ``SendRetryable`` until the last attempt;
    a study that changed or cannot be exported fails at once.
    """
    from lesionloop.review import services as review

    if not _claim_job(DicomSend, send_id, DicomSend.Status.QUEUED, DicomSend.Status.SENDING):
        return None
    send = DicomSend.objects.select_related("node", "study").get(pk=send_id)
    destination = f"{send.node.ae_title}@{send.node.host}:{send.node.port}"
    study = send.study
    if study.status != Study.Status.APPROVED or study.revision_number != send.revision:
        return _send_fail(send, destination, "The study changed since the send was requested.")
    exporter = (
        review.study_export_rtstruct if send.format == "rtstruct" else review.study_export_seg
    )
    try:
        data, _name = exporter(study_id=study.pk, user=send.requested_by)
    except DomainError as exc:
        return _send_fail(send, destination, f"{exc.code}: {exc.message}")
    from io import BytesIO

    from pydicom import dcmread

    ds = dcmread(BytesIO(data))
    uids = [str(ds.SOPInstanceUID)]
    try:
        statuses = network.store(_peer(send.node), calling_ae=_our_ae(), datasets=[ds])
    except (network.DicomNetworkError, OSError) as exc:
        return _send_attempt_failed(send, destination, uids, "", str(exc))
    remote = ",".join(f"0x{s:04X}" for s in statuses)
    # 0x0000 success; 0xB000/0xB007/0xB006 warnings (stored, coerced or elements discarded)
    if any(s not in (0x0000, 0xB000, 0xB006, 0xB007) for s in statuses):
        return _send_attempt_failed(send, destination, uids, remote, f"remote status {remote}")
    DicomSend.objects.filter(pk=send.pk).update(
        status=DicomSend.Status.SENT, sop_instance_uids=uids, remote_status=remote, error=""
    )
    audit_record(
        event_type="dicom_sent",
        actor=send.requested_by,
        study=study,
        destination=destination,
        node=send.node.name,
        format=send.format,
        revision=send.revision,
        sop_instance_uids=uids,
        remote_status=remote,
        attempt=send.attempts,
    )
    return DicomSend.objects.get(pk=send.pk)


def _send_fail(send: DicomSend, destination: str, error: str) -> DicomSend:
    DicomSend.objects.filter(pk=send.pk).update(status=DicomSend.Status.FAILED, error=error)
    audit_record(
        event_type="dicom_send_failed",
        actor=send.requested_by,
        study=send.study_id,
        destination=destination,
        node=send.node.name,
        format=send.format,
        sop_instance_uids=[],
        remote_status="",
        error=error,
        attempt=send.attempts,
        final=True,
    )
    return DicomSend.objects.get(pk=send.pk)


def _send_attempt_failed(
    send: DicomSend, destination: str, uids: list[str], remote: str, error: str
) -> DicomSend:
    final = send.attempts >= SEND_MAX_ATTEMPTS
    DicomSend.objects.filter(pk=send.pk).update(
        status=DicomSend.Status.FAILED if final else DicomSend.Status.QUEUED,
        sop_instance_uids=uids,
        remote_status=remote,
        error=error[:4000],
    )
    audit_record(
        event_type="dicom_send_failed",
        actor=send.requested_by,
        study=send.study_id,
        destination=destination,
        node=send.node.name,
        format=send.format,
        sop_instance_uids=uids,
        remote_status=remote,
        error=error,
        attempt=send.attempts,
        final=final,
    )
    if not final:
        raise SendRetryable(f"send {send.pk} attempt {send.attempts}: {error}")
    return DicomSend.objects.get(pk=send.pk)
