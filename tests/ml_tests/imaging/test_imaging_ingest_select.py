"""Series selection, the found/ignored report, nesting, zips and compressed pixel data."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

from ml.imaging.dicom_io import ingest
from ml.imaging.geometry import SAGITTAL
from ml.imaging.geometry import GridGeometry as Geometry
from ml.synthetic.dicom_writer import write_series


def _reference(study: Path) -> tuple[np.ndarray, np.ndarray]:
    res = ingest(study / "dicom")
    return sitk.GetArrayFromImage(res.ct), sitk.GetArrayFromImage(res.mr)


def _add_clutter(up: Path) -> None:
    """A localizer, a FLAIR, a dose report, a text file and a DICOMDIR-like file."""
    ct0 = pydicom.dcmread(sorted((up / "ct").glob("*.dcm"))[0])
    mr0 = pydicom.dcmread(sorted((up / "mr").glob("*.dcm"))[0])
    base = {"PatientID": ct0.PatientID, "PatientName": ct0.PatientName,
            "StudyInstanceUID": ct0.StudyInstanceUID}  # fmt: skip
    # A CT localizer: 3 images in 3 orientations.
    loc = up / "extra" / "loc"
    for k, iop in enumerate(((1, 0, 0, 0, 1, 0), (1, 0, 0, 0, 0, -1), (0, 1, 0, 0, 0, -1))):
        d = np.array([*iop[:3], *iop[3:], *np.cross(iop[:3], iop[3:])]).reshape(3, 3).T
        g = Geometry.centred(np.zeros(3), (16, 16, 1), (10.0, 10.0, 1.0), tuple(d.ravel()))
        write_series(np.zeros((1, 16, 16), np.uint16), g, loc, modality="CT", file_prefix=f"L{k}",
                     tags={**base, "SeriesInstanceUID": "1.2.826.0.1.99.1", "SeriesDescription": "Topogram",
                           "ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]},
                     uid_parts=("loc", k))  # fmt: skip
    # A sagittal FLAIR in the MR study.
    g = Geometry.centred(np.zeros(3), (24, 24, 6), (8.0, 8.0, 8.0), SAGITTAL)
    write_series(np.zeros((6, 24, 24), np.uint16), g, up / "extra" / "flair", modality="MR",
                 tags={**base, "StudyInstanceUID": mr0.StudyInstanceUID,
                       "SeriesInstanceUID": "1.2.826.0.1.99.2", "SeriesDescription": "SAG FLAIR"},
                 uid_parts=("flair",))  # fmt: skip
    # A structured dose report (no pixels).
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.67"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    sr = Dataset()
    sr.file_meta = meta
    sr.SOPClassUID = meta.MediaStorageSOPClassUID
    sr.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    sr.Modality = "SR"
    sr.SeriesInstanceUID = "1.2.826.0.1.99.3"
    sr.SeriesDescription = "Dose Report"
    for k, v in base.items():
        setattr(sr, k, v)
    sr.save_as(up / "extra" / "dose.dcm", enforce_file_format=True)
    (up / "README.txt").write_text("exported by PACS")


def test_clutter_is_listed_as_ignored_with_reasons(upload: Path) -> None:
    _add_clutter(upload)
    res = ingest(upload)
    reasons = {
        (r.get("series_description") or r.get("file")): r["reason"] for r in res.report["ignored"]
    }
    assert "localizer" in reasons["Topogram"]
    assert "other than contrast T1" in reasons["SAG FLAIR"]
    assert "modality SR" in reasons["Dose Report"]
    assert reasons["README.txt"] == "not a DICOM file"
    roles = {r["series_description"]: r["role"] for r in res.report["found"]}
    assert roles["CT HEAD"] == "planning_ct"
    assert roles["T1 MPRAGE +C"] == "contrast_t1_mr"
    assert res.dicom["patient_id"] == "LLSYN000011"
    assert res.ct.GetSize()[:2] == (64, 64)


def test_any_order_and_nesting_and_zip_give_the_same_volumes(
    tiny_study: Path, upload: Path, tmp_path: Path
) -> None:
    ct_ref, mr_ref = _reference(tiny_study)
    # Scatter the files over nested folders with shuffled names.
    files = sorted(upload.rglob("*.dcm"))
    rng = np.random.default_rng(0)
    scattered = tmp_path / "scattered"
    for i, f in enumerate(rng.permutation(files)):
        dst = scattered / f"d{i % 3}" / f"sub{i % 5}" / f"{rng.integers(1e9)}_{i}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dst)
    res = ingest(scattered)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(res.ct), ct_ref)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(res.mr), mr_ref)
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in scattered.rglob("*"):
            if f.is_file():
                zf.write(f, "export/" + str(f.relative_to(scattered)))
    res = ingest(archive)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(res.ct), ct_ref)
    assert res.report["found"][0]["example_file"].startswith("export/")


@pytest.mark.parametrize(
    "syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless], ids=["rle", "jpeg-ls", "jpeg2000"]
)
def test_lossless_compressed_series_decode_to_the_same_volume(
    tiny_study: Path, upload: Path, syntax: str
) -> None:  # fmt: skip
    ct_ref, _ = _reference(tiny_study)
    for f in sorted((upload / "ct").glob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.compress(syntax)
        ds.save_as(f, enforce_file_format=True)
    assert (
        pydicom.dcmread(next((upload / "ct").glob("*.dcm"))).file_meta.TransferSyntaxUID == syntax
    )
    res = ingest(upload)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(res.ct), ct_ref)


def test_non_contrast_t1_alone_is_used_with_a_warning(upload: Path) -> None:
    for f in (upload / "mr").glob("*.dcm"):
        ds = pydicom.dcmread(f)
        ds.SeriesDescription = "AX 3D"
        del ds.ContrastBolusAgent
        ds.save_as(f, enforce_file_format=True)
    res = ingest(upload)
    assert any("not recognisably a contrast-enhanced T1" in w for w in res.report["warnings"])


def test_post_contrast_t1_is_preferred_over_pre_contrast(upload: Path) -> None:
    # A pre-contrast copy of the MR, acquired earlier, tagged with the agent anyway.
    pre = upload / "mr_pre"
    shutil.copytree(upload / "mr", pre)
    uid = generate_uid()
    for f in sorted(pre.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = uid
        ds.SOPInstanceUID = generate_uid()
        ds.SeriesDescription = "T1 MPRAGE"
        ds.SeriesNumber = 3
        ds.save_as(f, enforce_file_format=True)
    res = ingest(upload)
    assert res.dicom["mr_series_description"] == "T1 MPRAGE +C"
    reasons = {r.get("series_description"): r["reason"] for r in res.report["ignored"]}
    assert "better contrast T1" in reasons["T1 MPRAGE"]


def _to_enhanced_mr(series_dir: Path, out: Path) -> None:
    """Pack single-frame MR slices into one Enhanced MR Image Storage object."""
    slices = [pydicom.dcmread(f) for f in sorted(series_dir.glob("*.dcm"))]
    first = slices[0]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    for kw in ("PatientID", "PatientName", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
               "SeriesDescription", "SeriesNumber", "ContrastBolusAgent", "MRAcquisitionType",
               "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
               "SamplesPerPixel", "PhotometricInterpretation", "StudyDate"):  # fmt: skip
        setattr(ds, kw, getattr(first, kw))
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.NumberOfFrames = len(slices)
    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = first.PixelSpacing
    pm.SliceThickness = first.SliceThickness
    po = Dataset()
    po.ImageOrientationPatient = first.ImageOrientationPatient
    shared.PixelMeasuresSequence = [pm]
    shared.PlaneOrientationSequence = [po]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    order = np.random.default_rng(1).permutation(len(slices))  # frames in any order
    for i in order:
        item = Dataset()
        pp = Dataset()
        pp.ImagePositionPatient = slices[i].ImagePositionPatient
        item.PlanePositionSequence = [pp]
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = frames
    ds.PixelData = np.stack([slices[i].pixel_array for i in order]).astype(np.uint16).tobytes()
    ds.save_as(out, enforce_file_format=True)


def test_enhanced_multiframe_mr_is_read_frame_by_frame(tiny_study: Path, upload: Path) -> None:
    _, mr_ref = _reference(tiny_study)
    _to_enhanced_mr(upload / "mr", upload / "enhanced_mr.dcm")
    shutil.rmtree(upload / "mr")
    res = ingest(upload)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(res.mr), mr_ref)
    assert res.report["found"][1]["n_files"] == mr_ref.shape[0]  # one entry per frame
