"""Write a volume as a real single-frame DICOM series (CT or MR Image Storage)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

from ml.imaging.geometry import GridGeometry

UID_NAMESPACE = "lesionloop-synthetic-v1"


def stable_uid(*parts: object) -> UID:
    """A UID that depends only on ``parts``, so a seed always gives the same study."""
    return generate_uid(entropy_srcs=[UID_NAMESPACE, *(str(p) for p in parts)])


def _ds(v: float) -> str:
    """Decimal String: at most 16 characters."""
    s = f"{v:.6f}".rstrip("0").rstrip(".")
    if len(s) > 16:
        s = f"{v:.8g}"
    return s if s not in ("-0", "") else "0"


def write_series(
    stored_zyx: np.ndarray,
    geometry: GridGeometry,
    out_dir: Path,
    *,
    modality: str,
    tags: Mapping[str, object],
    uid_parts: tuple[object, ...],
    transfer_syntax: str | None = None,
    file_prefix: str = "IM",
) -> list[Path]:
    """One file per slice of ``stored_zyx`` (uint16 stored values, slice axis first).

    ``tags`` holds patient/study/series-level attributes written to every slice;
    positions, orientation, spacing and instance UIDs come from ``geometry``.
    """
    if stored_zyx.dtype != np.uint16:
        raise TypeError("stored values must be uint16")
    out_dir.mkdir(parents=True, exist_ok=True)
    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    d = np.asarray(geometry.direction, dtype=float).reshape(3, 3)
    row_dir, col_dir, normal = d[:, 0], d[:, 1], d[:, 2]
    sx, sy, sz = geometry.spacing_xyz
    origin = np.asarray(geometry.origin_xyz, dtype=float)
    paths: list[Path] = []
    n = stored_zyx.shape[0]
    for k in range(n):
        sop_uid = stable_uid(*uid_parts, "instance", k)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        for key, value in tags.items():
            setattr(ds, key, value)
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = sop_uid
        ds.Modality = modality
        ds.InstanceNumber = k + 1
        pos = origin + normal * sz * k
        ds.ImagePositionPatient = [_ds(v) for v in pos]
        ds.ImageOrientationPatient = [_ds(v) for v in (*row_dir, *col_dir)]
        # PixelSpacing is (row spacing = along the column direction, column spacing).
        ds.PixelSpacing = [_ds(sy), _ds(sx)]
        ds.SliceThickness = _ds(sz)
        ds.SpacingBetweenSlices = _ds(sz)
        ds.SliceLocation = _ds(float(pos @ normal))
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = int(stored_zyx.shape[1]), int(stored_zyx.shape[2])
        ds.BitsAllocated = 16
        ds.BitsStored = 12 if modality == "CT" else 16
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = 0
        plane = np.ascontiguousarray(stored_zyx[k])
        if ds.BitsStored == 12:
            plane = np.minimum(plane, 4095)
        ds.PixelData = plane.tobytes()
        if transfer_syntax is not None and transfer_syntax != ExplicitVRLittleEndian:
            ds.compress(UID(transfer_syntax), plane)
        path = out_dir / f"{file_prefix}{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
