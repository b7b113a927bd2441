"""Benchmark: DICOM receive throughput and completion delay of the listener, on loopback.

A raw synthetic 512x512x160 CT and a 176-slice 256x256 MR (uncompressed, written with
pydicom: content does not matter here) are sent with pynetdicom over one association
each to a listener running in this process (its completion loop polling every 0.2 s).
Prints MB/s received and how long after the last object the ingest job appeared,
minus the quiet period. Targets: >= 50 MB/s, <= 2 s.

    DATABASE_URL=postgres://... DJANGO_SETTINGS_MODULE=lesionloop.settings.test \\
        python benchmarks/dicom_receive.py [--quiet-seconds 2]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lesionloop.settings.test")


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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quiet-seconds", type=float, default=2.0)
    args = p.parse_args()

    import django
    from django.conf import settings

    settings.STORAGE_ROOT = Path(tempfile.mkdtemp(prefix="ll-bench-dicom-"))
    django.setup()
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases
    from pydicom.uid import generate_uid
    from pynetdicom import AE, StoragePresentationContexts

    from lesionloop.pacs.listener import Listener, listener_config
    from lesionloop.studies.models import Job

    setup_test_environment()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        listener = Listener(
            listener_config(host="127.0.0.1", port=port, ae_title="LESIONLOOP"),
            quiet_seconds=args.quiet_seconds,
            poll_seconds=0.2,
        ).start()
        study_ct, study_mr = generate_uid(), generate_uid()
        datasets = series("CT", (160, 512, 512), study_ct) + series("MR", (176, 256, 256), study_mr)
        nbytes = sum(len(ds.PixelData) for ds in datasets)
        ae = AE(ae_title="BENCH")
        ae.requested_contexts = StoragePresentationContexts
        started = time.monotonic()
        for part in (datasets[:160], datasets[160:]):
            assoc = ae.associate("127.0.0.1", port, ae_title="LESIONLOOP")
            for ds in part:
                status = assoc.send_c_store(ds)
                assert status.Status == 0, status
            assoc.release()
        last = time.monotonic()
        while not Job.objects.filter(kind="ingest").exists():
            time.sleep(0.02)
            if time.monotonic() - last > args.quiet_seconds + 60:
                raise SystemExit("no ingest job within a minute")
        created = time.monotonic()
        listener.stop()
        seconds = last - started
        print(f"objects: {len(datasets)}  pixel MB: {nbytes / 1e6:.1f}  send: {seconds:.2f} s")
        print(f"receive throughput: {nbytes / 1e6 / seconds:.1f} MB/s (target >= 50)")
        delay = created - last - args.quiet_seconds
        print(f"ingest job created {delay:.2f} s after last object + quiet period (target <= 2)")
    finally:
        teardown_databases(old, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
