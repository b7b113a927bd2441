"""A CT read straight into int16 HU (``ml.imaging.hu_volume``) has exactly the values
and geometry of the general decoder (pydicom's ``pixel_array``, rescaled in float), and
everything downstream of ingest (the prepared study) is identical."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from ml.imaging import dicom_io
from ml.imaging.dicom_io import load_series, scan
from ml.imaging.hu_volume import writable_view
from ml.imaging.pipeline import prepare_study

Edit = Callable[[int, pydicom.Dataset], None]


def _ct_files(up: Path) -> list[Path]:
    return sorted((up / "ct").glob("*.dcm"))


def _edit(up: Path, fn: Edit) -> None:
    for k, p in enumerate(_ct_files(up)):
        ds = pydicom.dcmread(p)
        fn(k, ds)
        ds.save_as(p, enforce_file_format=True)


def _expected_hu(up: Path) -> np.ndarray:
    """float64 (z, y, x): pydicom's stored values times slope plus intercept, slices in
    ImagePositionPatient z order (the tiny CT is axial, head first supine)."""
    slices = [pydicom.dcmread(p) for p in _ct_files(up)]
    slices.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    return np.stack(
        [
            ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
            for ds in slices
        ]
    )


def _load_ct(up: Path) -> sitk.Image:
    series, _ = scan(up / "ct")
    return load_series(max(series, key=lambda s: len(s.files)), [])


def _unchanged(k: int, ds: pydicom.Dataset) -> None:
    """The synthetic CT as written: uint16, BitsStored 12, intercept -1024."""


def _signed_hu(k: int, ds: pydicom.Dataset) -> None:
    """Signed storage holding HU (intercept 0)."""
    hu = ds.pixel_array.astype(np.int32) - 1024
    ds.PixelRepresentation, ds.BitsStored, ds.HighBit = 1, 16, 15
    ds.PixelData = hu.astype("<i2").tobytes()
    ds.RescaleIntercept = "0"


def _slope_two(k: int, ds: pydicom.Dataset) -> None:
    ds.RescaleSlope, ds.RescaleIntercept = "2", "-2048"


def _high_bits_set(k: int, ds: pydicom.Dataset) -> None:
    """Garbage above BitsStored (12): masked off, as pydicom does."""
    ds.PixelData = (ds.pixel_array.astype("<u2") | 0xF000).tobytes()


def _fractional_slope(k: int, ds: pydicom.Dataset) -> None:
    ds.RescaleSlope, ds.RescaleIntercept = "0.5", "-1024.25"


def _one_slice_other_intercept(k: int, ds: pydicom.Dataset) -> None:
    if k == 3:
        ds.PixelData = (ds.pixel_array.astype("<u2") + 24).tobytes()
        ds.RescaleIntercept = "-1048"


def _beyond_int16(k: int, ds: pydicom.Dataset) -> None:
    """Stored values above 32767 (uint16, 16 bits): HU fit, the stored values do not."""
    ds.BitsStored, ds.HighBit = 16, 15
    ds.PixelData = (ds.pixel_array.astype("<u2") + 31744).tobytes()
    ds.RescaleIntercept = "-32768"


CASES = [
    # (id, edit, dtype the volume is loaded as)
    ("uint16_12bit_intercept", _unchanged, np.int16),
    ("int16_hu", _signed_hu, np.int16),
    ("slope_2", _slope_two, np.int16),
    ("bits_above_bits_stored", _high_bits_set, np.int16),
    ("fractional_slope", _fractional_slope, np.float32),
    ("per_slice_intercept", _one_slice_other_intercept, np.float32),
    ("stored_beyond_int16", _beyond_int16, np.float32),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "dtype"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hu_and_geometry_equal_the_general_decoder(
    upload: Path, monkeypatch: pytest.MonkeyPatch, edit: Edit, dtype: type
) -> None:
    _edit(upload, edit)
    img = _load_ct(upload)
    arr = sitk.GetArrayFromImage(img)
    assert arr.dtype == dtype
    np.testing.assert_array_equal(arr.astype(np.float64), _expected_hu(upload))
    # The general decoder (float32, file by file) gives the same voxels and grid.
    monkeypatch.setattr(dicom_io, "_hu_stack", lambda s, headers: None)
    ref = _load_ct(upload)
    assert ref.GetPixelID() == sitk.sitkFloat32
    np.testing.assert_array_equal(arr.astype(np.float32), sitk.GetArrayFromImage(ref))
    assert img.GetSize() == ref.GetSize()
    assert img.GetOrigin() == ref.GetOrigin()
    assert img.GetSpacing() == ref.GetSpacing()
    assert img.GetDirection() == ref.GetDirection()


def test_a_moved_pixel_data_element_falls_back_to_the_decoder(
    upload: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The header scan saw PixelData at one offset; a file rewritten since (a longer
    header) is read by pydicom instead, with the same values."""
    series, _ = scan(upload / "ct")
    ct = max(series, key=lambda s: len(s.files))
    ds = pydicom.dcmread(ct.files[0].path)
    ds.ImageComments = "x" * 64  # PixelData moves 72 bytes further
    ds.save_as(ct.files[0].path, enforce_file_format=True)
    img = load_series(ct, [])
    assert img.GetPixelID() == sitk.sitkFloat32
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), _expected_hu(upload))


def test_writable_view_writes_into_the_image() -> None:
    img = sitk.Image([5, 4, 3], sitk.sitkInt16)
    view = writable_view(img)
    assert view.shape == (3, 4, 5) and view.flags.writeable
    view[2, 1, 4] = -1000
    assert img[4, 1, 2] == -1000


def test_prepared_study_is_identical_with_the_int16_ct(
    tiny_study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registration, resampling, the CT reference and the model input do not depend on
    whether the CT reached them as int16 or float32 (registration itself varies by
    ~1e-8 between runs on one input: ITK's multithreaded metric)."""
    fast = prepare_study(tiny_study / "dicom", tmp_path / "int16", grid="tiny")
    monkeypatch.setattr(dicom_io, "_hu_stack", lambda s, headers: None)
    slow = prepare_study(tiny_study / "dicom", tmp_path / "float32", grid="tiny")
    assert fast["grid"] == slow["grid"] and fast["ct_geometry"] == slow["ct_geometry"]
    for key in ("translation_xyz_mm", "angles_rad", "matrix"):
        np.testing.assert_allclose(
            fast["registration"]["transform"][key], slow["registration"]["transform"][key],
            atol=1e-6,
        )  # fmt: skip
    np.testing.assert_array_equal(
        np.load(tmp_path / "int16" / "display_ct.npy"),
        np.load(tmp_path / "float32" / "display_ct.npy"),
    )
    for name, atol in (("model_input.npy", 1e-4), ("display_mr.npy", 1)):
        np.testing.assert_allclose(
            np.load(tmp_path / "int16" / name), np.load(tmp_path / "float32" / name), atol=atol
        )
    refs = [sitk.ReadImage(str(tmp_path / d / "ct_reference.nii.gz")) for d in ("int16", "float32")]
    assert refs[0].GetPixelID() == refs[1].GetPixelID() == sitk.sitkInt16
    np.testing.assert_array_equal(*(sitk.GetArrayFromImage(r) for r in refs))
