"""Faults real uploads have: each kind is either repaired with a line in the report, or
refused with a specific code naming the file and tag. When ingest succeeds, the CT and
MR voxels are the unmodified study's, so the synthetic ground truth (drawn on that CT
grid) still lands on the lesions."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import generate_uid

from ml.imaging.dicom_export import dataset_bytes
from ml.imaging.dicom_io import IngestResult, ingest
from ml.imaging.errors import INGEST_ERROR_CODES, IngestError
from ml.imaging.reference_ct import load_reference_ct
from tests.ml_tests.imaging.fault_builders import (
    duplicate_file,
    edit_all,
    localizer_in_ct_series,
    lossy_flag,
    series_files,
    spacing_header,
)

Mutation = Callable[[Path], object]


@pytest.fixture(scope="module")
def baseline(tiny_study: Path) -> IngestResult:
    return ingest(tiny_study / "dicom")


def _assert_truth_lands(
    res: IngestResult,
    base: IngestResult,
    study: Path,
    hu_atol: float,
    voxel_atol: float | None = None,
) -> None:
    """The CT grid is the unmodified study's (the ground truth mask, written on that grid,
    fits it), the lesions' mean CT value is the same to ``hu_atol``, every CT voxel to
    ``voxel_atol`` (default ``hu_atol``) and the MR voxels are unchanged."""
    gt = sitk.ReadImage(str(study / "ground_truth_ct.nii.gz"))
    assert res.ct.GetSize() == gt.GetSize()
    np.testing.assert_allclose(res.ct.GetOrigin(), gt.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(res.ct.GetSpacing(), gt.GetSpacing(), rtol=1e-4)
    np.testing.assert_allclose(res.ct.GetDirection(), gt.GetDirection(), atol=1e-3)
    lesion = sitk.GetArrayFromImage(gt) > 0
    assert lesion.sum() > 0
    got, want = sitk.GetArrayFromImage(res.ct), sitk.GetArrayFromImage(base.ct)
    assert abs(float(got[lesion].mean()) - float(want[lesion].mean())) <= hu_atol
    np.testing.assert_allclose(got, want, atol=hu_atol if voxel_atol is None else voxel_atol)
    np.testing.assert_allclose(sitk.GetArrayFromImage(res.mr), sitk.GetArrayFromImage(base.mr))


# --- repaired or accepted with a report row ---------------------------------------


def _ct_monochrome1(up: Path) -> list[str]:
    """Every CT slice says MONOCHROME1: HU still come from the rescale, not inverted."""
    edit_all(
        series_files(up, "ct"), lambda ds: setattr(ds, "PhotometricInterpretation", "MONOCHROME1")
    )
    return ["monochrome1"]


def _ct_monochrome1_three_slices(up: Path) -> list[str]:
    edit_all(
        series_files(up, "ct")[10:13],
        lambda ds: setattr(ds, "PhotometricInterpretation", "MONOCHROME1"),
    )
    return ["monochrome1"]


def _mr_monochrome1_whole_series(up: Path) -> list[str]:
    """The MR stored inverted (M - v, M = series max + min) and labelled MONOCHROME1:
    one mapping for the series gives back the original values exactly."""
    files = series_files(up, "mr")
    planes = [pydicom.dcmread(p).pixel_array for p in files]
    top = int(max(a.max() for a in planes)) + int(min(a.min() for a in planes))

    def invert(ds: pydicom.Dataset) -> None:
        ds.PixelData = (top - ds.pixel_array.astype(np.int32)).astype(np.uint16).tobytes()
        ds.PhotometricInterpretation = "MONOCHROME1"

    edit_all(files, invert)
    return ["monochrome1"]


def _iop_noise(eps: float) -> Mutation:
    """``eps`` added to one direction component of every other CT and MR slice."""

    def mutate(up: Path) -> list[str]:
        def nudge(ds: pydicom.Dataset) -> None:
            iop = [float(v) for v in ds.ImageOrientationPatient]
            iop[1] += eps
            ds.ImageOrientationPatient = [f"{v:.8g}" for v in iop]

        edit_all(series_files(up, "ct")[::2] + series_files(up, "mr")[1::2], nudge)
        return []

    return mutate


ACCEPTED = [
    # (id, mutation returning the report kinds expected, CT tolerance in HU)
    ("ct_monochrome1", _ct_monochrome1, 0.0),
    ("ct_monochrome1_some_slices", _ct_monochrome1_three_slices, 0.0),
    ("mr_monochrome1_one_mapping", _mr_monochrome1_whole_series, 0.0),
    ("localizer_in_ct_series", localizer_in_ct_series, 0.0),
    ("iop_noise_1e-6", _iop_noise(1e-6), 0.0),
    ("iop_noise_1e-4", _iop_noise(1e-4), 0.0),
    ("iop_noise_5e-4", _iop_noise(5e-4), 0.0),
    ("lossy_flag", lossy_flag, 0.0),
    ("spacing_header", spacing_header, 0.0),
    ("duplicate_file", duplicate_file, 0.0),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "hu_atol"), [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED]
)
def test_fault_is_repaired_reported_and_truth_still_lands(
    upload: Path, tiny_study: Path, baseline: IngestResult, mutate: Mutation, hu_atol: float
) -> None:  # fmt: skip
    kinds = mutate(upload)
    res = ingest(upload)
    _assert_truth_lands(res, baseline, tiny_study, hu_atol)
    got = {r["kind"] for r in res.report["rows"]}
    assert set(kinds) <= got, res.report["rows"]
    for row in res.report["rows"]:
        assert set(row) == {"kind", "severity", "message", "files", "series"}
        assert row["message"] and row["severity"] in ("info", "warning")


def test_lossy_row_names_the_ratio(upload: Path) -> None:
    lossy_flag(upload)
    (row,) = [r for r in ingest(upload).report["rows"] if r["kind"] == "lossy_compression"]
    assert "ratio 8.5:1" in row["message"] and "dose planning" in row["message"]
    assert len(row["files"]) == len(series_files(upload, "ct"))


def test_jpeg2000_lossy_planning_ct_is_accepted_with_a_warning(
    upload: Path, tiny_study: Path, baseline: IngestResult
) -> None:
    from pydicom.uid import JPEG2000

    def compress(ds: pydicom.Dataset) -> None:
        ds.compress(JPEG2000, j2k_cr=[20], encoding_plugin="pylibjpeg")

    try:
        edit_all(series_files(upload, "ct"), compress)
    except (RuntimeError, ValueError, ImportError) as exc:  # no JPEG 2000 encoder here
        pytest.skip(f"cannot encode JPEG 2000: {exc}")
    res = ingest(upload)
    # Lossy (20:1 on 64x64 planes): voxels differ, the lesions' mean HU little and the
    # grid (so the truth's position) not at all.
    _assert_truth_lands(res, baseline, tiny_study, hu_atol=50.0, voxel_atol=2000.0)
    (row,) = [r for r in res.report["rows"] if r["kind"] == "lossy_compression"]
    assert "JPEG 2000" in row["message"]


# --- character sets ---------------------------------------------------------------

CHARSETS = [
    # (id, SpecificCharacterSet, patient name, stored name, fallback noted)
    ("latin1", "ISO_IR 100", "Müller^Jörg", "Müller^Jörg", False),
    ("utf8", "ISO_IR 192", "Łukasz^Żółć", "Łukasz^Żółć", False),
    ("iso2022_japanese", "\\ISO 2022 IR 87", "ヤマダ^タロウ=山田^太郎", "ヤマダ^タロウ=山田^太郎", False),
    ("unknown", "ISO_IR 999", "Muller^Jorg", "Muller^Jorg", True),
]  # fmt: skip


@pytest.mark.filterwarnings("ignore:Unknown encoding")
@pytest.mark.parametrize(
    ("charset", "name", "stored", "fallback"), [c[1:] for c in CHARSETS], ids=[c[0] for c in CHARSETS]
)  # fmt: skip
def test_patient_name_survives_ingest_and_exports(
    upload: Path,
    tiny_study: Path,
    baseline: IngestResult,
    charset: str,
    name: str,
    stored: str,
    fallback: bool,
) -> None:
    from ml.imaging.dicom_seg import build_segmentation
    from ml.imaging.rtstruct import build_rtstruct

    def rename(ds: pydicom.Dataset) -> None:
        ds.SpecificCharacterSet = charset
        ds.PatientName = name

    edit_all(series_files(upload, "ct") + series_files(upload, "mr"), rename)
    res = ingest(upload)
    _assert_truth_lands(res, baseline, tiny_study, 0.0)
    assert res.dicom["patient_name"] == stored
    kinds = {r["kind"] for r in res.report["rows"]}
    assert ("charset_fallback" in kinds) == fallback
    slices = load_reference_ct(upload, res.ct_series.series_uid)
    labels = (sitk.GetArrayFromImage(sitk.ReadImage(str(tiny_study / "ground_truth_ct.nii.gz"))) > 0).astype(np.uint8)  # fmt: skip
    for obj in (build_rtstruct(slices, labels), build_segmentation(slices, labels)):
        back = pydicom.dcmread(io.BytesIO(dataset_bytes(obj)))
        assert str(back.PatientName) == stored


# --- refused with a specific code -------------------------------------------------


def _no_frame_of_reference(up: Path) -> str:
    f = series_files(up, "ct")[6]
    edit_all([f], lambda ds: delattr(ds, "FrameOfReferenceUID"))
    return "ct/" + f.name


def _other_frame_of_reference(up: Path) -> str:
    f = series_files(up, "ct")[9]
    edit_all([f], lambda ds: setattr(ds, "FrameOfReferenceUID", generate_uid()))
    return "ct/" + f.name


def _shared_sop_instance(up: Path) -> str:
    a, b = series_files(up, "ct")[3:5]
    uid = pydicom.dcmread(a).SOPInstanceUID
    edit_all([b], lambda ds: setattr(ds, "SOPInstanceUID", uid))
    return "ct/" + b.name


def _ct_without_intercept(up: Path) -> str:
    """RescaleIntercept 0 instead of -1024: air at +24, not -1000 HU."""
    edit_all(series_files(up, "ct"), lambda ds: setattr(ds, "RescaleIntercept", "0"))
    return "ct/" + series_files(up, "ct")[0].name


def _ct_pixels_inverted_by_a_viewer(up: Path) -> str:
    """Stored values inverted (4095 - v) and labelled MONOCHROME1: HU are not inverted
    back, so air is bright and the CT is refused rather than silently wrong."""

    def invert(ds: pydicom.Dataset) -> None:
        ds.PixelData = (4095 - ds.pixel_array.astype(np.int32)).astype(np.uint16).tobytes()
        ds.PhotometricInterpretation = "MONOCHROME1"

    edit_all(series_files(up, "ct"), invert)
    return "ct/" + series_files(up, "ct")[0].name


def _only_localizers(up: Path) -> None:
    edit_all(series_files(up, "ct"), lambda ds: setattr(ds, "ImageType", ["ORIGINAL", "PRIMARY", "LOCALIZER"]))  # fmt: skip


REFUSED = [
    # (id, mutation, code, tag)
    ("no_frame_of_reference", _no_frame_of_reference, "missing_frame_of_reference", "FrameOfReferenceUID (0020,0052)"),
    ("other_frame_of_reference", _other_frame_of_reference, "mixed_frame_of_reference", "FrameOfReferenceUID (0020,0052)"),
    ("shared_sop_instance", _shared_sop_instance, "duplicate_sop_instance", "SOPInstanceUID (0008,0018)"),
    ("ct_air_not_minus_1000", _ct_without_intercept, "ct_not_hounsfield", "RescaleIntercept (0028,1052)"),
    ("ct_inverted_pixels", _ct_pixels_inverted_by_a_viewer, "ct_not_hounsfield", "RescaleIntercept (0028,1052)"),
    ("only_localizers", _only_localizers, "no_ct", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "code", "tag"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_fault_is_refused_with_code_file_and_tag(
    upload: Path, mutate: Callable[[Path], str | None], code: str, tag: str | None
) -> None:  # fmt: skip
    assert code in INGEST_ERROR_CODES
    expected_file = mutate(upload)
    with pytest.raises(IngestError) as info:
        ingest(upload)
    assert info.value.code == code, str(info.value)
    assert info.value.tag == tag
    if expected_file is not None:
        assert info.value.file == expected_file
