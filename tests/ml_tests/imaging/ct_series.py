"""A bare CT series written with pydicom, of any size, spacing and patient position, and
lesion masks on its grid (for the export tests against independent tools)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

# PatientPosition -> (ImageOrientationPatient, slice direction along +z or -z): the
# orientations scanners write for these positions (PS3.3 C.7.6.2.1.1).
POSITIONS = {
    "HFS": ((1.0, 0.0, 0.0, 0.0, 1.0, 0.0), 1.0),
    "HFP": ((-1.0, 0.0, 0.0, 0.0, -1.0, 0.0), 1.0),
    "FFS": ((-1.0, 0.0, 0.0, 0.0, 1.0, 0.0), -1.0),
}


def write_ct_series(
    out_dir: Path,
    *,
    shape_dhw: tuple[int, int, int],
    spacing_mm: tuple[float, float, float],
    position: str = "HFS",
    spacing_header_mm: float | None = None,
) -> list[Dataset]:
    """CT slices (int16 zeros, HU -1000) in ``out_dir``; returns the datasets in file
    order. ``spacing_mm`` = (slice step, row spacing, column spacing);
    ``spacing_header_mm`` writes a SpacingBetweenSlices that may disagree."""
    out_dir.mkdir(parents=True, exist_ok=True)
    iop, z_sign = POSITIONS[position]
    d, h, w = shape_dhw
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    pixels = np.zeros((h, w), dtype=np.int16).tobytes()
    out = []
    for k in range(d):
        ds = _slice(k, iop, z_sign, shape_dhw, spacing_mm, (study, series, frame), position)
        if spacing_header_mm is not None:
            ds.SpacingBetweenSlices = spacing_header_mm
        ds.PixelData = pixels
        ds.save_as(out_dir / f"ct_{k:04d}.dcm", enforce_file_format=True)
        out.append(ds)
    return out


def _slice(
    k: int,
    iop: tuple[float, ...],
    z_sign: float,
    shape_dhw: tuple[int, int, int],
    spacing_mm: tuple[float, float, float],
    uids: tuple[str, str, str],
    position: str,
) -> Dataset:
    d, h, w = shape_dhw
    sop = generate_uid()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, sop, "CT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = uids
    ds.PatientName, ds.PatientID, ds.PatientPosition = "Export^Test", "EXP001", position
    ds.PatientBirthDate, ds.PatientSex, ds.ReferringPhysicianName = "", "O", ""
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", ""
    ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
    ds.ImageOrientationPatient = list(iop)
    ds.ImagePositionPatient = [
        -w * spacing_mm[2] / 2,
        -h * spacing_mm[1] / 2,
        z_sign * k * spacing_mm[0],
    ]
    ds.PixelSpacing = [spacing_mm[1], spacing_mm[2]]
    ds.SliceThickness = spacing_mm[0]
    ds.Rows, ds.Columns, ds.SamplesPerPixel = h, w, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope = -1000, 1
    return ds


def ct_image(slices: list[Dataset]) -> sitk.Image:
    """An empty SimpleITK image on the CT grid, array order = ``sort_slices`` order."""
    from ml.imaging.geometry import ct_grid, sort_slices

    return ct_grid(sort_slices(slices)).reference(sitk.sitkUInt8)


def ellipsoid(
    shape: tuple[int, int, int],
    centre: tuple[float, float, float],
    radii_vox: tuple[float, float, float],
) -> np.ndarray:
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return (
        ((zz - centre[0]) / radii_vox[0]) ** 2
        + ((yy - centre[1]) / radii_vox[1]) ** 2
        + ((xx - centre[2]) / radii_vox[2]) ** 2
    ) <= 1.0


def ring(
    shape: tuple[int, int, int],
    centre: tuple[float, float, float],
    outer_vox: float,
    inner_vox: float,
    half_height: int,
) -> np.ndarray:
    """A thick-walled tube along z: a ring-shaped lesion on every slice it crosses."""
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    r2 = (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2
    return (np.abs(zz - centre[0]) <= half_height) & (r2 <= outer_vox**2) & (r2 > inner_vox**2)
