"""Benchmark: DICOM receive throughput and completion delay of the listener, on loopback.

A raw synthetic 512x512x160 CT and a 176-slice 256x256 MR (uncompressed, written with
pydicom: content does not matter here) are written to a folder, then sent by a separate
process - dcmtk's ``storescu`` (default) or a pynetdicom script (``--sender pynetdicom``)
- over one association for the whole folder, to a listener running in this process
(its completion loop polling every 0.2 s). Prints MB/s received (file bytes and pixel
bytes, from the sender's start to its exit) and how long after the last object the
ingest job appeared, minus the quiet period. Targets: >= 50 MB/s, <= 2 s.
``--profile FILE`` writes cProfile stats of the listener's association threads.
``--fsync batch|object`` overrides ``LESIONLOOP_DICOM_FSYNC`` for the listener.
``--receiver bare`` / ``bare-fsync`` measure the ceiling instead: a bare pynetdicom SCP
with no database, writing each object (temporary name, rename; with ``-fsync`` also
fsync of the file and of its folder) and nothing else.

    DATABASE_URL=postgres://... DJANGO_SETTINGS_MODULE=lesionloop.settings.test \\
        python benchmarks/dicom_receive.py [--quiet-seconds 2] [--sender storescu] \\
        [--associations 4] [--fsync batch] [--receiver listener]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lesionloop.settings.test")

# The pynetdicom sender, run as its own process: argv = port, files...
PYNETDICOM_SENDER = """
import sys
from pydicom import dcmread
from pynetdicom import AE, StoragePresentationContexts
ae = AE(ae_title="BENCH")
ae.requested_contexts = StoragePresentationContexts
assoc = ae.associate("127.0.0.1", int(sys.argv[1]), ae_title="LESIONLOOP")
assert assoc.is_established
for path in sys.argv[2:]:
    status = assoc.send_c_store(dcmread(path))
    assert status.Status == 0, status
assoc.release()
"""


def series(modality: str, shape: tuple[int, int, int], study_uid: str) -> list:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    series_uid, frame = generate_uid(), generate_uid()
    pixels = np.random.default_rng(0).integers(0, 2000, shape[1:], dtype=np.int16).tobytes()
    out = []
    for z in range(shape[0]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID, ds.PatientName, ds.Modality = "BENCH0001", "BENCH^DICOM", modality
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = (
            study_uid,
            series_uid,
            frame,
        )
        ds.InstanceNumber = z + 1
        ds.ImagePositionPatient = [0, 0, float(z)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [0.5, 0.5], 1.0
        ds.Rows, ds.Columns = shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = pixels
        out.append(ds)
    return out


def write_folder(folder: Path) -> tuple[list[Path], int]:
    """The CT and MR as files in ``folder``; (paths, pixel bytes)."""
    from pydicom.uid import generate_uid

    datasets = series("CT", (160, 512, 512), generate_uid())
    datasets += series("MR", (176, 256, 256), generate_uid())
    paths = []
    for i, ds in enumerate(datasets):
        path = folder / f"{i:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths, sum(len(ds.PixelData) for ds in datasets)


def sender_command(sender: str, port: int, folder: Path, paths: list[Path]) -> list[str]:
    """One sender process, one association for ``paths``."""
    if sender == "storescu":
        exe = shutil.which("storescu")
        if exe is None:
            raise SystemExit("storescu not found (apt-get install dcmtk) - or --sender pynetdicom")
        return [exe, "-q", "-aet", "BENCH", "-aec", "LESIONLOOP", "127.0.0.1", str(port),
                *map(str, paths)]  # fmt: skip
    return [sys.executable, "-c", PYNETDICOM_SENDER, str(port), *map(str, paths)]


def send(sender: str, port: int, folder: Path, paths: list[Path], associations: int) -> None:
    """Send ``paths`` over ``associations`` concurrent associations (a PACS or modality
    often opens several), each a process of its own; waits for all."""
    chunks = [paths[i::associations] for i in range(associations)]
    procs = [subprocess.Popen(sender_command(sender, port, folder, c)) for c in chunks if c]
    codes = [proc.wait() for proc in procs]
    if any(codes):
        raise SystemExit(f"a sender failed: exit codes {codes}")


def bare_receiver(port: int, folder: Path, *, fsync: bool) -> Any:
    """The ceiling: pynetdicom's SCP with the listener's presentation contexts and a
    handler that only writes the object as pynetdicom hands it over; the server."""
    from pynetdicom import AE, AllStoragePresentationContexts, evt

    from lesionloop.pacs.network import ACCEPTED_TRANSFER_SYNTAXES

    ae = AE(ae_title="LESIONLOOP")
    ae.maximum_pdu_size = 0
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, ACCEPTED_TRANSFER_SYNTAXES)

    def handle_store(event: Any) -> int:
        target = folder / f"{event.request.AffectedSOPInstanceUID}.dcm"
        tmp = target.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(event.encoded_dataset())
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, target)
        if fsync:
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return 0x0000

    return ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, handle_store)]
    )


def profile_associations(out: Path) -> None:
    """Profile the listener's association threads; their stats merged into ``out``."""
    import cProfile
    import pstats
    import threading

    from pynetdicom.association import Association
    from pynetdicom.dul import DULServiceProvider

    lock = threading.Lock()
    stats: list[pstats.Stats] = []

    def profiled(original: Any) -> Any:
        def run(self: Any) -> None:
            prof = cProfile.Profile()
            prof.enable()
            try:
                original(self)
            finally:
                prof.disable()
                with lock:
                    if stats:
                        stats[0].add(prof)
                    else:
                        stats.append(pstats.Stats(prof))
                    stats[0].dump_stats(out)

        return run

    # the association's reactor (our handlers) and its DUL thread (PDUs off the socket)
    Association.run_reactor = profiled(Association.run_reactor)  # type: ignore[method-assign]
    DULServiceProvider.run = profiled(DULServiceProvider.run)  # type: ignore[method-assign]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def report(
    args: argparse.Namespace, n: int, file_bytes: int, pixel_bytes: int, seconds: float
) -> None:
    print(
        f"receiver: {args.receiver}{f' (fsync {args.fsync})' if args.receiver == 'listener' else ''}"
        f"  sender: {args.sender} x {args.associations} association(s)  objects: {n}  "
        f"send: {seconds:.2f} s"
    )
    print(
        f"receive throughput: {file_bytes / 1e6 / seconds:.1f} MB/s of files "
        f"({pixel_bytes / 1e6 / seconds:.1f} MB/s of pixels; target >= 50)"
    )


def run_bare(args: argparse.Namespace, work: Path, paths: list[Path], pixel_bytes: int) -> None:
    port = free_port()
    received = work / "received"
    received.mkdir()
    server = bare_receiver(port, received, fsync=args.receiver == "bare-fsync")
    try:
        started = time.monotonic()
        send(args.sender, port, work / "send", paths, max(1, args.associations))
        seconds = time.monotonic() - started
    finally:
        server.shutdown()
    assert len(list(received.glob("*.dcm"))) == len(paths)
    report(args, len(paths), sum(p.stat().st_size for p in paths), pixel_bytes, seconds)


def run_listener(args: argparse.Namespace, work: Path, paths: list[Path], pixel_bytes: int) -> None:
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    from lesionloop.pacs.listener import Listener, listener_config
    from lesionloop.pacs.models import ReceivedStudy
    from lesionloop.studies.models import Job

    if args.profile:
        profile_associations(args.profile)
    setup_test_environment()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        port = free_port()
        listener = Listener(
            listener_config(host="127.0.0.1", port=port, ae_title="LESIONLOOP"),
            quiet_seconds=args.quiet_seconds,
            poll_seconds=0.2,
        ).start()
        started = time.monotonic()
        send(args.sender, port, work / "send", paths, max(1, args.associations))
        last = time.monotonic()
        while not Job.objects.filter(kind="ingest").exists():
            time.sleep(0.02)
            if time.monotonic() - last > args.quiet_seconds + 60:
                raise SystemExit("no ingest job within a minute")
        created = time.monotonic()
        listener.stop()
        received = sum(ReceivedStudy.objects.values_list("object_count", flat=True))
        assert received == len(paths), f"{received} of {len(paths)} objects received"
        report(args, len(paths), sum(p.stat().st_size for p in paths), pixel_bytes, last - started)
        delay = created - last - args.quiet_seconds
        print(f"ingest job created {delay:.2f} s after last object + quiet period (target <= 2)")
    finally:
        teardown_databases(old, verbosity=0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quiet-seconds", type=float, default=2.0)
    p.add_argument("--sender", choices=["storescu", "pynetdicom"], default="storescu")
    p.add_argument("--receiver", choices=["listener", "bare", "bare-fsync"], default="listener")
    p.add_argument("--fsync", choices=["batch", "object"], help="LESIONLOOP_DICOM_FSYNC")
    p.add_argument("--profile", type=Path, help="write cProfile stats of the listener here")
    p.add_argument(
        "--associations", type=int, default=1, help="concurrent associations (sender processes)"
    )
    args = p.parse_args()

    import django
    from django.conf import settings

    work = Path(tempfile.mkdtemp(prefix="ll-bench-dicom-"))
    settings.STORAGE_ROOT = work / "storage"
    if args.fsync:
        settings.LESIONLOOP_DICOM_FSYNC = args.fsync
    django.setup()
    args.fsync = getattr(settings, "LESIONLOOP_DICOM_FSYNC", "object")
    try:
        folder = work / "send"
        folder.mkdir()
        paths, pixel_bytes = write_folder(folder)
        run = run_listener if args.receiver == "listener" else run_bare
        run(args, work, paths, pixel_bytes)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
