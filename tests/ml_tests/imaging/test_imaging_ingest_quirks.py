"""Quirks of real files, each kind handled right or refused by name (issue 16, QA round):

- a CT slice whose rescale is wrong while the rest of the series is right is refused
  (``ct_slice_not_hounsfield``, naming the file and its air value), while padding
  outside the reconstruction circle, as real scanners write it, is not mistaken for it;
- pixels in big-endian byte order (either signedness, CT or MR) read as pydicom reads
  them;
- files without the 128-byte preamble read as every other file, whenever they are read
  (scan, load, exports);
- values ingest repairs or guesses (a RescaleSlope of 0, non-ASCII text without a
  character set) are listed in the report.

Each input is the tiny synthetic study altered with pydicom.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRBigEndian, RLELossless

from ml.imaging.dicom_io import IngestResult, ingest
from ml.imaging.errors import INGEST_ERROR_CODES, IngestError
from ml.imaging.reference_ct import load_reference_ct
from ml.imaging.sanity import CT_SLICE_AIR_HU, slice_air_hu
from tests.ml_tests.imaging.fault_builders import edit_all, series_files
from tests.ml_tests.imaging.test_imaging_ingest_faults import _assert_truth_lands

Mutation = Callable[[Path], object]


@pytest.fixture(scope="module")
def baseline(tiny_study: Path) -> IngestResult:
    return ingest(tiny_study / "dicom")


# --- one slice not in Hounsfield units ----------------------------------------------


def _intercept(value: str | None, picks: slice | list[int]) -> Mutation:
    """RescaleIntercept ``value`` (None: deleted, with RescaleSlope) on the CT files
    ``picks`` (in file-name order, which is slice order for the synthetic CT); returns
    their names."""

    def mutate(up: Path) -> list[str]:
        files = series_files(up, "ct")
        chosen = files[picks] if isinstance(picks, slice) else [files[k] for k in picks]

        def set_it(ds: pydicom.Dataset) -> None:
            if value is None:
                del ds.RescaleIntercept, ds.RescaleSlope
            else:
                ds.RescaleIntercept = value

        edit_all(chosen, set_it)
        return ["ct/" + p.name for p in chosen]

    return mutate


# The synthetic air is about -1013 HU at the low 1 % of a slice (stored about 11 with
# intercept -1024): about +11 HU with intercept 0, about -2037 HU with -2048.
NEAR_0, NEAR_MINUS_2037 = (-10, 40), (-2060, -2010)
SLICE_REFUSED = [
    # (id, mutation returning the files that must be named, range of their air (HU))
    ("one_slice_intercept_0", _intercept("0", [20]), NEAR_0),
    ("one_slice_no_rescale", _intercept(None, [20]), NEAR_0),
    ("first_slice_intercept_0", _intercept("0", [0]), NEAR_0),
    ("last_slice_intercept_0", _intercept("0", [-1]), NEAR_0),
    ("three_slices_intercept_0", _intercept("0", [5, 6, 30]), NEAR_0),
    ("every_other_slice_intercept_0", _intercept("0", slice(None, None, 2)), NEAR_0),
    ("one_slice_intercept_-2048", _intercept("-2048", [12]), NEAR_MINUS_2037),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "air_hu"), [c[1:] for c in SLICE_REFUSED], ids=[c[0] for c in SLICE_REFUSED]
)
def test_a_slice_whose_air_is_not_minus_1000_is_refused_by_name(
    upload: Path, mutate: Callable[[Path], list[str]], air_hu: tuple[float, float]
) -> None:
    assert "ct_slice_not_hounsfield" in INGEST_ERROR_CODES
    n = len(series_files(upload, "ct"))
    bad = mutate(upload)
    with pytest.raises(IngestError) as info:
        ingest(upload)
    err = info.value
    assert err.code == "ct_slice_not_hounsfield", str(err)
    assert err.file == bad[0]
    assert err.tag == "RescaleSlope (0028,1053) / RescaleIntercept (0028,1052)"
    assert f": {len(bad)} of {n} slice(s) have their air far from -1000 HU" in err.message
    named = dict(re.findall(r"(ct/\S+) \(air at (-?\d+) HU\)", err.message))
    assert list(named) == bad[:5]
    assert all(air_hu[0] <= int(v) <= air_hu[1] for v in named.values()), named
    if len(bad) > 5:
        assert f"and {len(bad) - 5} more" in err.message
    others = re.search(r"other slices' air is at (-?\d+) HU", err.message)
    assert others and -1030 <= int(others.group(1)) <= -1000


def _padding(value_hu: int) -> Mutation:
    """Pixels outside a circle of radius 30 px set to ``value_hu`` (a scanner's padding
    outside the reconstructed field), stored with intercept -3024 so that it fits."""

    def mutate(up: Path) -> None:
        yy, xx = np.mgrid[:64, :64]
        outside = (yy - 31.5) ** 2 + (xx - 31.5) ** 2 > 30**2

        def pad(ds: pydicom.Dataset) -> None:
            hu = ds.pixel_array.astype(np.int32) + int(ds.RescaleIntercept)
            hu[outside] = value_hu
            ds.RescaleIntercept, ds.BitsStored, ds.HighBit = "-3024", 16, 15
            ds.PixelData = (hu + 3024).astype("<u2").tobytes()

        edit_all(series_files(up, "ct"), pad)

    return mutate


PADDED = [("padding_-3024", -3024), ("padding_-2000", -2000), ("padding_-1024", -1024)]


@pytest.mark.parametrize("value_hu", [c[1] for c in PADDED], ids=[c[0] for c in PADDED])
def test_padding_outside_the_field_is_not_mistaken_for_a_wrong_slice(
    upload: Path, baseline: IngestResult, value_hu: int
) -> None:
    _padding(value_hu)(upload)
    res = ingest(upload)
    got, want = sitk.GetArrayFromImage(res.ct), sitk.GetArrayFromImage(baseline.ct)
    yy, xx = np.mgrid[:64, :64]
    inside = (yy - 31.5) ** 2 + (xx - 31.5) ** 2 <= 30**2
    np.testing.assert_array_equal(got[:, inside], want[:, inside])
    assert np.all(got[:, ~inside] == value_hu)
    air = slice_air_hu(res.ct)
    assert np.all((air >= CT_SLICE_AIR_HU[0]) & (air <= CT_SLICE_AIR_HU[1])), air


def test_slice_air_of_a_slice_of_only_padding_is_unknown() -> None:
    arr = np.full((3, 8, 8), -1014, np.int16)
    arr[1] = -3024
    arr[2, :4] = -3024
    air = slice_air_hu(sitk.GetImageFromArray(arr))
    assert air[0] == -1014 and np.isnan(air[1]) and air[2] == -1014


# --- byte order ---------------------------------------------------------------------


def _big_endian(modality: str, signed: bool) -> Mutation:
    """The ``modality`` series rewritten in Explicit VR Big Endian; ``signed``: stored as
    int16 HU (intercept 0) instead of the synthetic uint16 (intercept -1024)."""

    def mutate(up: Path) -> None:
        for p in series_files(up, modality):
            ds = pydicom.dcmread(p)
            stored = ds.pixel_array.astype(np.int32)  # decoded before the syntax changes
            if signed:
                stored += int(ds.get("RescaleIntercept") or 0)
                ds.RescaleIntercept = "0"
                ds.PixelRepresentation, ds.BitsStored, ds.HighBit = 1, 16, 15
            ds.PixelData = stored.astype(">i2" if signed else ">u2").tobytes()
            ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
            pydicom.dcmwrite(
                p, ds, implicit_vr=False, little_endian=False, enforce_file_format=True
            )

    return mutate


def _pydicom_values(up: Path, modality: str) -> np.ndarray:
    """float64 (z, y, x): pydicom's stored values times slope plus intercept, slices in
    ImagePositionPatient z order (the tiny study is axial, head first supine)."""
    slices = sorted(
        (pydicom.dcmread(p) for p in series_files(up, modality)),
        key=lambda ds: float(ds.ImagePositionPatient[2]),
    )
    return np.stack(
        [
            ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope") or 1)
            + float(ds.get("RescaleIntercept") or 0)
            for ds in slices
        ]
    )


BYTE_ORDERS = [
    ("ct_unsigned", "ct", False),
    ("ct_signed", "ct", True),
    ("mr_unsigned", "mr", False),
    ("ct_and_mr", "both", True),
]


@pytest.mark.parametrize(
    ("modality", "signed"), [c[1:] for c in BYTE_ORDERS], ids=[c[0] for c in BYTE_ORDERS]
)
def test_big_endian_pixels_read_as_pydicom_reads_them(
    upload: Path, tiny_study: Path, baseline: IngestResult, modality: str, signed: bool
) -> None:
    for m in ("ct", "mr") if modality == "both" else (modality,):
        _big_endian(m, signed)(upload)
    res = ingest(upload)
    # Decoded by pydicom: float32 HU, the voxels exact, their mean to float32 rounding.
    _assert_truth_lands(res, baseline, tiny_study, 1e-3)
    for m in ("ct", "mr") if modality == "both" else (modality,):
        img = res.ct if m == "ct" else res.mr
        got = sitk.GetArrayFromImage(img).astype(np.float64)
        np.testing.assert_allclose(got, _pydicom_values(upload, m), atol=1e-3)


# --- no preamble ----------------------------------------------------------------------


def _strip(modalities: tuple[str, ...], picks: slice, rle: bool = False) -> Mutation:
    """The first 132 bytes (preamble and ``DICM``) cut from the files ``picks`` of each
    series; ``rle``: RLE-compressed first (so loading decodes them with pydicom)."""

    def mutate(up: Path) -> None:
        for m in modalities:
            chosen = series_files(up, m)[picks]
            if rle:
                for p in chosen:
                    ds = pydicom.dcmread(p)
                    ds.compress(RLELossless)
                    ds.save_as(p, enforce_file_format=True)
            for p in chosen:
                p.write_bytes(p.read_bytes()[132:])

    return mutate


def _no_file_meta(modalities: tuple[str, ...], picks: slice, implicit: bool) -> Mutation:
    """The files ``picks`` of each series written as a bare data set: no preamble, no
    file meta group (so no transfer syntax: pydicom finds the encoding itself)."""

    def mutate(up: Path) -> None:
        for m in modalities:
            for p in series_files(up, m)[picks]:
                ds = pydicom.dcmread(p)
                fp = DicomBytesIO()
                fp.is_little_endian, fp.is_implicit_VR = True, implicit
                write_dataset(fp, ds)
                p.write_bytes(fp.getvalue())

    return mutate


NO_PREAMBLE = [
    # (id, mutation, HU tolerance: float32 rounding when the CT is decoded by pydicom)
    ("one_ct_file", _strip(("ct",), slice(7, 8)), 0.0),
    ("every_ct_file", _strip(("ct",), slice(None)), 0.0),
    ("every_file", _strip(("ct", "mr"), slice(None)), 0.0),
    ("some_ct_files_rle", _strip(("ct",), slice(3, 9), rle=True), 1e-3),
    ("some_mr_files_rle", _strip(("mr",), slice(0, 4), rle=True), 0.0),
    ("no_file_meta_implicit", _no_file_meta(("ct", "mr"), slice(None), True), 0.0),
    ("no_file_meta_explicit_some", _no_file_meta(("ct",), slice(10, 20), False), 0.0),
]


@pytest.mark.parametrize(
    ("mutate", "hu_atol"), [c[1:] for c in NO_PREAMBLE], ids=[c[0] for c in NO_PREAMBLE]
)
def test_files_without_preamble_load_and_export_like_the_others(
    upload: Path, tiny_study: Path, baseline: IngestResult, mutate: Mutation, hu_atol: float
) -> None:
    mutate(upload)
    res = ingest(upload)
    _assert_truth_lands(res, baseline, tiny_study, hu_atol)
    slices = load_reference_ct(upload, res.ct_series.series_uid)  # what the exports read
    assert len(slices) == res.ct.GetSize()[2]


# --- repaired values are reported -------------------------------------------------------


def _slope_zero(modality: str, picks: list[int]) -> Mutation:
    def mutate(up: Path) -> tuple[str, list[str]]:
        chosen = [series_files(up, modality)[k] for k in picks]
        edit_all(chosen, lambda ds: setattr(ds, "RescaleSlope", "0"))
        return "rescale_repaired", [f"{modality}/{p.name}" for p in chosen]

    return mutate


def _undeclared_text(charset: str | None, raw_name: bytes) -> Mutation:
    """Every file's PatientName set to ``raw_name`` (bytes) with SpecificCharacterSet
    ``charset`` (None: absent) that does not declare non-ASCII text."""

    def mutate(up: Path) -> tuple[str, list[str]]:
        def rename(ds: pydicom.Dataset) -> None:
            if charset is None:
                del ds.SpecificCharacterSet
            else:
                ds.SpecificCharacterSet = charset
            ds["PatientName"].value = raw_name

        files = series_files(up, "ct") + series_files(up, "mr")
        edit_all(files, rename)
        return "charset_fallback", ["ct/" + series_files(up, "ct")[0].name]

    return mutate


REPAIRED = [
    # (id, mutation returning (row kind, files the row must name), words in the row,
    #  patient name ingest reads)
    ("ct_slope_zero_one_file", _slope_zero("ct", [9]), "RescaleSlope is 0", None),
    ("ct_slope_zero_every_file", _slope_zero("ct", list(range(46))), "RescaleSlope is 0", None),
    ("mr_slope_zero", _slope_zero("mr", [2, 3]), "RescaleSlope is 0", None),
    ("latin1_no_charset", _undeclared_text(None, "Müller^Jörg".encode("latin-1")), "a guess", "Müller^Jörg"),
    ("utf8_no_charset", _undeclared_text(None, "Müller^Jörg".encode()), "a guess", "MÃ¼ller^JÃ¶rg"),
    ("latin1_iso_ir_6", _undeclared_text("ISO_IR 6", "Müller".encode("latin-1")), "a guess", "Müller"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "words", "name"), [c[1:] for c in REPAIRED], ids=[c[0] for c in REPAIRED]
)
def test_a_repaired_or_guessed_value_gets_a_report_row(
    upload: Path,
    tiny_study: Path,
    baseline: IngestResult,
    mutate: Callable[[Path], tuple[str, list[str]]],
    words: str,
    name: str | None,
) -> None:
    kind, files = mutate(upload)
    res = ingest(upload)
    _assert_truth_lands(res, baseline, tiny_study, 0.0)  # the synthetic slope is 1
    rows = [r for r in res.report["rows"] if r["kind"] == kind]
    assert len(rows) == 1 + (kind == "charset_fallback"), res.report["rows"]  # CT (and MR)
    row = rows[0]
    assert row["severity"] == "warning" and words in row["message"]
    assert set(files[:20]) <= set(row["files"])
    if kind == "rescale_repaired":
        assert row["message"].startswith(f"{files[0][:2].upper()} series")
        assert f"{len(files)} slice(s)" in row["message"]
    if name is not None:
        assert res.dicom["patient_name"] == name


def test_a_plain_study_has_no_repair_rows(baseline: IngestResult) -> None:
    kinds = {r["kind"] for r in baseline.report["rows"]}
    assert not kinds & {"rescale_repaired", "charset_fallback"}
