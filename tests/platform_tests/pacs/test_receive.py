"""The listener (C-STORE / C-ECHO SCP) and completion into studies, with real peers:
pynetdicom as a modality, dcmtk's storescu, and the listener restarted mid-study."""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from lesionloop.audit.models import AuditEvent
from lesionloop.loop import flows
from lesionloop.pacs import services
from lesionloop.pacs.models import ReceivedStudy
from lesionloop.studies import storage
from lesionloop.studies.models import Job, Study

from .peers import case_files, store_files

pytestmark = pytest.mark.django_db(transaction=True)


def ingest(study: Study) -> Study:
    for job in Job.objects.filter(study=study, kind="ingest", state="queued"):
        flows.study_ingest(job_id=job.pk)
    study.refresh_from_db()
    return study


def test_echo_works(start_listener: Any) -> None:
    listener = start_listener()
    ae = AE(ae_title="ANYONE")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", listener.port, ae_title="LESIONLOOP")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


# (listener config, calling AE, called AE, refusal reason or None when accepted)
ASSOCIATIONS = [
    ({"allowed_aets": ["ORTHANC"]}, "ORTHANC", "LESIONLOOP", None),
    ({"allowed_aets": ["ORTHANC"]}, "INTRUDER", "LESIONLOOP", "calling AE title not allowed"),
    ({}, "ANYONE", "LESIONLOOP", None),
    ({}, "ANYONE", "SOMEONEELSE", "called AE title 'SOMEONEELSE' is not ours"),
    ({"allowed_networks": ["127.0.0.0/8"]}, "ANYONE", "LESIONLOOP", None),
    ({"allowed_networks": ["10.0.0.0/8"]}, "ANYONE", "LESIONLOOP", "address not in the allowed"),
]


@pytest.mark.parametrize(("config", "calling", "called", "refused"), ASSOCIATIONS)
def test_unknown_callers_are_refused_at_association_and_audited(
    start_listener: Any, config: dict, calling: str, called: str, refused: str | None
) -> None:
    listener = start_listener(**config)
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.network_timeout = 5
    assoc = ae.associate("127.0.0.1", listener.port, ae_title=called)
    assert assoc.is_established == (refused is None)
    if assoc.is_established:
        assoc.release()
        time.sleep(0.3)
        assert not AuditEvent.objects.filter(event_type="dicom_association_refused").exists()
        return
    deadline = time.monotonic() + 5  # written by the listener's thread after it refused
    while time.monotonic() < deadline:
        event = AuditEvent.objects.filter(event_type="dicom_association_refused").first()
        if event is not None:
            break
        time.sleep(0.05)
    assert event is not None
    assert event.payload["reason"].startswith(refused)
    assert event.payload["address"] == "127.0.0.1"
    network_refusal = "allowed_networks" in config  # refused before any AE title is read
    assert event.payload["calling_ae"] == ("" if network_refusal else calling)


def test_staged_objects_left_by_a_crash_are_put_back_for_completion(
    start_listener: Any, synthetic_case: Path
) -> None:
    """The listener died after staging objects but before counting or completing them:
    its next start puts them back in line, and they become a study."""
    files = case_files(synthetic_case)
    listener = start_listener()
    assert set(store_files(listener.port, files)) == {0}
    listener.stop()
    ReceivedStudy.objects.all().delete()  # as if the rows were never written
    assert len(list(services.staging_root().rglob("*.dcm"))) == len(files)
    start_listener()  # recovers at start
    rows = ReceivedStudy.objects.all()
    assert [r.status for r in rows] == ["receiving"] * 2
    assert sum(r.object_count for r in rows) == len(files)
    assert len(services.received_studies_complete(quiet_seconds=0)) == 2
    assert Job.objects.filter(kind="ingest").count() == 1
    assert services.received_staging_recover() == []  # nothing left staged


def test_a_study_becomes_a_study_and_an_ingest_job_once(
    start_listener: Any, synthetic_case: Path, caplog: pytest.LogCaptureFixture
) -> None:
    listener = start_listener()
    files = case_files(synthetic_case)
    assert set(store_files(listener.port, files)) == {0}
    # the same objects again: stored once
    assert set(store_files(listener.port, files[:5])) == {0}
    rows = ReceivedStudy.objects.order_by("pk")  # the CT and the MR are two DICOM studies
    assert [r.status for r in rows] == ["receiving"] * 2
    assert sum(r.object_count for r in rows) == len(files)
    assert {r.calling_ae for r in rows} == {"MODALITY"}
    assert services.received_studies_complete(quiet_seconds=3600) == []  # not quiet yet
    with caplog.at_level(logging.INFO, logger="lesionloop.pacs.services"):
        assert sorted(services.received_studies_complete(quiet_seconds=0)) == [r.pk for r in rows]
        assert services.received_studies_complete(quiet_seconds=0) == []  # claimed once
    rows = list(ReceivedStudy.objects.order_by("pk"))
    # One INFO line per completed study: the UIDs' digests, the objects, the study id.
    done = [r for r in caplog.records if "received study complete" in r.getMessage()]
    assert [r.levelno for r in done] == [logging.INFO]
    digests = sorted(hashlib.sha256(r.study_instance_uid.encode()).hexdigest()[:12] for r in rows)
    assert done[0].getMessage() == (
        f"received study complete after 0s quiet: StudyInstanceUID sha256 {', '.join(digests)}"
        f", {len(files)} objects -> study {rows[0].study_id}, ingest queued"
    )
    assert not any(r.study_instance_uid in caplog.text for r in rows)
    assert {r.status for r in rows} == {"done"} and len({r.study_id for r in rows}) == 1
    study = rows[0].study
    assert study.source == "dicom"
    assert len(list((storage.upload_dir(study.pk) / "dicom").iterdir())) == len(files)
    assert not list(services.staging_root().rglob("*.dcm"))
    event = AuditEvent.objects.get(event_type="study_received")
    assert event.payload["calling_ae"] == "MODALITY"
    assert event.payload["objects"] == len(files)
    assert event.payload["bytes"] == sum(r.bytes for r in rows)
    assert Job.objects.filter(study=study, kind="ingest").count() == 1
    study = ingest(study)
    assert study.prepared and study.status == "awaiting_model", study.status_reason


def test_restart_mid_study_loses_nothing(start_listener: Any, synthetic_case: Path) -> None:
    files = case_files(synthetic_case)
    half = len(files) // 4  # half of the CT
    first = start_listener()
    assert set(store_files(first.port, files[:half])) == {0}
    first.stop()
    second = start_listener(complete=True, quiet_seconds=3, port=first.config.port)
    assert set(store_files(second.port, files[half:])) == {0}
    deadline = time.monotonic() + 30
    while not Study.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # a second round must not complete it again
    study = Study.objects.get()
    assert len(list((storage.upload_dir(study.pk) / "dicom").iterdir())) == len(files)
    assert Job.objects.filter(study=study, kind="ingest").count() == 1


def test_two_studies_at_once_and_a_late_mr_reingests_the_same_study(
    start_listener: Any, synthetic_case: Path, tmp_path: Path
) -> None:
    from ml.synthetic import generate_study

    other = tmp_path / "other"
    generate_study(other, seed=2, grid="tiny")
    listener = start_listener()
    ct = sorted((synthetic_case / "dicom" / "ct").glob("*.dcm"))
    mr = sorted((synthetic_case / "dicom" / "mr").glob("*.dcm"))
    results: list[list[int]] = []
    threads = [
        threading.Thread(target=lambda f=f: results.append(store_files(listener.port, f)))
        for f in (ct, case_files(other))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(set(r) == {0} for r in results) and len(results) == 2
    assert len(services.received_studies_complete(quiet_seconds=0)) == 3
    assert Study.objects.count() == 2
    first = ReceivedStudy.objects.get(study_instance_uid=_study_uid(ct[0])).study
    assert ingest(first).status == "failed"  # the MR has not come yet
    # the MR arrives over two associations
    store_files(listener.port, mr[:3])
    store_files(listener.port, mr[3:])
    assert len(services.received_studies_complete(quiet_seconds=0)) == 1
    assert Study.objects.count() == 2  # attached to the same study
    study = ingest(first)
    assert study.prepared and study.status == "awaiting_model", study.status_reason
    # objects after a successful ingest are recorded in the study's report
    late = mr[0].parent / "late.dcm"
    _with_new_sop(mr[0], late)
    store_files(listener.port, [late])
    services.received_studies_complete(quiet_seconds=0)
    study.refresh_from_db()
    assert [o["modality"] for o in study.report["late_objects"]] == ["MR"]
    assert Job.objects.filter(study=study, kind="ingest").count() == 2
    late.unlink()


def _study_uid(path: Path) -> str:
    from pydicom import dcmread

    return str(dcmread(path, stop_before_pixels=True).StudyInstanceUID)


def _with_new_sop(src: Path, dest: Path) -> None:
    from pydicom import dcmread
    from pydicom.uid import generate_uid

    ds = dcmread(src)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(dest)


@pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk's storescu is not installed")
def test_storescu_with_a_corrupt_file_in_the_middle(
    start_listener: Any, synthetic_case: Path, tmp_path: Path
) -> None:
    listener = start_listener()
    files = case_files(synthetic_case)
    folder = tmp_path / "send"
    folder.mkdir()
    for i, path in enumerate(files):
        shutil.copy(path, folder / f"{i:04d}.dcm")
    bad = folder / f"{len(files) // 2:04d}.dcm"
    from pydicom import dcmread

    ds = dcmread(bad)
    del ds.StudyInstanceUID  # sendable, but no study to put it in
    ds.save_as(bad)
    run = subprocess.run(
        [
            "storescu",
            "-v",
            "-aet",
            "MODALITY",
            "-aec",
            "LESIONLOOP",
            "-nh",
            "127.0.0.1",
            str(listener.port),
            *sorted(str(p) for p in folder.iterdir()),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = run.stdout + run.stderr
    assert sum(r.object_count for r in ReceivedStudy.objects.all()) == len(files) - 1, output
    assert "Error: CannotUnderstand" in output, output
    services.received_studies_complete(quiet_seconds=0)
    study = Study.objects.get()
    assert Job.objects.filter(study=study, kind="ingest").count() == 1


def test_a_structure_set_after_the_images_becomes_ground_truth(
    start_listener: Any,
    synthetic_case: Path,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The planning system sends its RTSTRUCT after the CT and MR: the study, not yet
    reviewed, is ingested again and approved with the GTVs as ground truth."""
    import numpy as np
    import pydicom
    import SimpleITK as sitk
    from scipy import ndimage

    from ml.imaging.dicom_io import ingest as read_study
    from tests.ml_tests.imaging.tps import tps_rtstruct

    listener = start_listener()
    assert set(store_files(listener.port, case_files(synthetic_case))) == {0}
    services.received_studies_complete(quiet_seconds=0)
    study = ingest(Study.objects.get())
    assert study.status == "awaiting_model"
    ct = sorted((synthetic_case / "dicom" / "ct").glob("*.dcm"))
    first = pydicom.dcmread(ct[0], stop_before_pixels=True)
    truth = (
        sitk.GetArrayFromImage(sitk.ReadImage(str(synthetic_case / "ground_truth_ct.nii.gz"))) > 0
    )
    labels, n = ndimage.label(truth, structure=np.ones((3, 3, 3)))
    rois = {f"GTV{i}": labels == i for i in range(1, n + 1)}
    rois["BrainStem"] = ndimage.binary_dilation(truth, iterations=1)
    rtstruct = tmp_path / "rtstruct.dcm"
    tps_rtstruct(first, read_study(synthetic_case / "dicom").ct, rois).save_as(
        rtstruct, enforce_file_format=True
    )
    assert store_files(listener.port, [rtstruct], calling_ae="TPS") == [0]
    with django_capture_on_commit_callbacks(execute=True):
        services.received_studies_complete(quiet_seconds=0)
    study = ingest(Study.objects.get())
    assert study.status == "approved" and study.lesions.count() == n
    assert {lesion.contour_source for lesion in study.lesions.all()} == {"imported"}
    assert study.report["ground_truth"]["ignored"][0]["roi"] == "BrainStem"


# (case, StudyInstanceUID written into the object)
BAD_UIDS = [
    ("path traversal", "1.2.3/../../outside"),
    ("letters", "1.2.abc"),
    ("too long", "1." + "2" * 70),
    ("NUL inside", "1.2\x003.4"),
]


@pytest.mark.parametrize(("case", "uid"), BAD_UIDS, ids=[b[0] for b in BAD_UIDS])
def test_a_malformed_uid_is_refused_for_that_object_only(
    start_listener: Any, synthetic_case: Path, tmp_path: Path, settings: Any, case: str, uid: str
) -> None:
    import warnings

    import pydicom

    listener = start_listener()
    good = sorted((synthetic_case / "dicom" / "ct").glob("*.dcm"))[:2]
    bad = tmp_path / "bad.dcm"
    ds = pydicom.dcmread(good[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.StudyInstanceUID = uid
        ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.999"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(bad)
    statuses = store_files(listener.port, [good[0], bad, good[1]])
    assert statuses[0] == 0 and statuses[2] == 0
    assert statuses[1] == 0xC210
    assert not (settings.STORAGE_ROOT.parent / "outside").exists()
    stored = set(ReceivedStudy.objects.values_list("study_instance_uid", flat=True))
    assert stored == {str(pydicom.dcmread(good[0], stop_before_pixels=True).StudyInstanceUID)}


def _staged() -> list[Path]:
    return sorted(services.staging_root().rglob("*.dcm"))


# (LESIONLOOP_DICOM_FSYNC, the threads that fsync the staged objects)
FSYNC_MODES = [
    ("object", "association"),  # before each success status
    ("batch", "dicom-fsync"),  # the group commit, after the status
]


@pytest.mark.parametrize(("mode", "syncing_thread"), FSYNC_MODES)
def test_each_object_is_stored_once_and_fsynced_by_its_mode(
    start_listener: Any, synthetic_case: Path, fsyncs: Any, mode: str, syncing_thread: str
) -> None:
    files = case_files(synthetic_case)
    listener = start_listener(fsync=mode)
    results: list[list[int]] = []
    # the same objects over two associations at once, then some of them again
    threads = [
        threading.Thread(target=lambda: results.append(store_files(listener.port, files)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.append(store_files(listener.port, files[:5]))
    listener.stop()  # batch: its last round
    assert all(set(r) == {0} for r in results) and len(results) == 3
    staged = _staged()
    assert sorted(p.name for p in staged) == sorted(f"{_sop_uid(p)}.dcm" for p in files)
    assert sum(r.object_count for r in ReceivedStudy.objects.all()) == len(files)
    # every staged object reached the disk, fsynced by the thread its mode says
    # (object mode fsyncs the file under its temporary name ".<name>.<random>.tmp")
    synced = {call.path.name.lstrip(".").split(".dcm")[0] + ".dcm": call.thread for call in fsyncs}
    assert {p.name for p in staged} <= set(synced)
    threads_seen = {synced[p.name] for p in staged}
    if syncing_thread == "association":
        assert "dicom-fsync" not in threads_seen and "MainThread" not in threads_seen
    else:
        assert threads_seen <= {"dicom-fsync", "MainThread"}  # MainThread: the stop round
        assert "dicom-fsync" in threads_seen


def _sop_uid(path: Path) -> str:
    from pydicom import dcmread

    return str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)


# (how the study's names are made, whether completion is given the listener's syncer)
COMPLETIONS = [("hard link", False), ("copy", False), ("hard link", True)]


@pytest.mark.parametrize(("publish", "with_syncer"), COMPLETIONS)
def test_a_study_is_on_disk_before_it_is_completed(
    start_listener: Any,
    synthetic_case: Path,
    fsyncs: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    publish: str,
    with_syncer: bool,
) -> None:
    """Batch mode whose syncer never gets its turn: completion fsyncs the staged files
    and folders before it makes the study, and the study's names before it commits
    (a copy, where the upload folder is on another file system, is fsynced itself)."""
    settings.LESIONLOOP_DICOM_FSYNC_INTERVAL_MS = 3_600_000
    files = case_files(synthetic_case)
    listener = start_listener(fsync="batch")
    assert set(store_files(listener.port, files)) == {0}
    staged = _staged()
    assert not {p for p in fsyncs.paths if p.suffix == ".dcm"}  # nothing synced yet
    if publish == "copy":

        def cross_device(src: Any, dst: Any) -> None:
            raise OSError(18, "Invalid cross-device link")

        monkeypatch.setattr(storage.os, "link", cross_device)
    seen_at_creation: list[set[Path]] = []
    create = services._study_from_received

    def recording(**kwargs: Any) -> Study:
        seen_at_creation.append(set(fsyncs.paths))
        return create(**kwargs)

    monkeypatch.setattr(services, "_study_from_received", recording)
    syncer = listener.syncer if with_syncer else None
    assert len(services.received_studies_complete(quiet_seconds=0, syncer=syncer)) == 2
    assert set(staged) | {p.parent for p in staged} <= seen_at_creation[0]
    study = Study.objects.get()
    upload = storage.upload_dir(study.pk) / "dicom"
    assert {upload, upload.parent} <= set(fsyncs.paths)
    copies = {upload / p.name for p in staged} & set(fsyncs.paths)
    assert len(copies) == (len(staged) if publish == "copy" else 0)
    assert len(list(upload.iterdir())) == len(files)
    assert listener.syncer.rounds == 0


def _rows_never_written() -> None:
    ReceivedStudy.objects.all().delete()


def _counters_not_flushed() -> None:
    ReceivedStudy.objects.update(object_count=1, bytes=1)


def _row_finished_before_its_last_objects() -> None:
    ReceivedStudy.objects.update(status="done")


# (what the crash left in the rows, how)
CRASHES = [
    ("rows never written", _rows_never_written),
    ("counters not flushed", _counters_not_flushed),
    ("row finished before its last objects", _row_finished_before_its_last_objects),
]


@pytest.mark.parametrize(("case", "crash"), CRASHES, ids=[c[0] for c in CRASHES])
def test_a_crash_in_batch_mode_loses_no_object(
    start_listener: Any,
    synthetic_case: Path,
    fsyncs: Any,
    settings: Any,
    case: str,
    crash: Any,
) -> None:
    """The listener process dies after answering success, before its syncer ran and
    before (some) rows were written: the next listener finds every object, the study
    is made once, with every file fsynced on the way."""
    settings.LESIONLOOP_DICOM_FSYNC_INTERVAL_MS = 3_600_000
    files = case_files(synthetic_case)
    first = start_listener(fsync="batch")
    assert set(store_files(first.port, files)) == {0}
    syncer, first.syncer = first.syncer, None
    syncer._stop.set()  # the crash: the syncer never runs again
    first.stop()
    crash()
    fsyncs.clear()
    start_listener(fsync="batch")  # recovers at start
    staged = _staged()
    assert sorted(services.received_studies_complete(quiet_seconds=0))
    study = Study.objects.get()
    upload = sorted((storage.upload_dir(study.pk) / "dicom").iterdir())
    assert [p.name for p in upload] == sorted(f"{_sop_uid(p)}.dcm" for p in files)
    assert Job.objects.filter(study=study, kind="ingest").count() == 1
    event = AuditEvent.objects.get(event_type="study_received")
    assert event.payload["objects"] == len(files)
    assert set(staged) <= set(fsyncs.paths)  # by completion: no syncer ran
    assert services.received_staging_recover() == [] and not _staged()
