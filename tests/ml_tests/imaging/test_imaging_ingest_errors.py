"""Every class of bad upload is refused with a specific code, file and tag."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, generate_uid

from ml.imaging.dicom_io import ingest
from ml.imaging.errors import IngestError
from ml.imaging.geometry import GridGeometry as Geometry
from ml.synthetic.dicom_writer import write_series


def _edit(path: Path, fn: Callable[[pydicom.Dataset], None]) -> None:
    ds = pydicom.dcmread(path)
    fn(ds)
    ds.save_as(path, enforce_file_format=True)


def _files(up: Path, modality: str) -> list[Path]:
    return sorted((up / modality.lower()).glob("*.dcm"))


def _only_text(up: Path) -> str:
    shutil.rmtree(up)
    up.mkdir()
    (up / "notes.txt").write_text("not an image")
    (up / "scan.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    return "notes.txt"


def _corrupt(up: Path) -> str:
    f = _files(up, "ct")[5]
    f.write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff" + b"garbage" * 20)
    return "ct/" + f.name


def _no_pixels(up: Path) -> str:
    f = _files(up, "ct")[7]
    _edit(f, lambda ds: delattr(ds, "PixelData"))
    return "ct/" + f.name


def _mixed_orientation(up: Path) -> str:
    f = _files(up, "mr")[9]
    _edit(f, lambda ds: setattr(ds, "ImageOrientationPatient", [1, 0, 0, 0, 0.9848, 0.1736]))
    return "mr/" + f.name


def _mixed_pixel_spacing(up: Path) -> str:
    f = _files(up, "ct")[12]
    _edit(f, lambda ds: setattr(ds, "PixelSpacing", [2.5, 2.5]))
    return "ct/" + f.name


def _mixed_dimensions(up: Path) -> str:
    f = _files(up, "mr")[4]

    def shrink(ds: pydicom.Dataset) -> None:
        arr = ds.pixel_array[:32, :32].copy()
        ds.Rows, ds.Columns = 32, 32
        ds.PixelData = arr.tobytes()

    _edit(f, shrink)
    return "mr/" + f.name


def _missing_slice(up: Path) -> str:
    files = _files(up, "ct")
    files[20].unlink()
    return "ct/" + files[21].name


def _irregular_spacing(up: Path) -> str:
    f = _files(up, "ct")[10]

    def nudge(ds: pydicom.Dataset) -> None:
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, z + 0.8]

    _edit(f, nudge)
    return "ct/" + f.name


def _duplicate(up: Path) -> str:
    src = _files(up, "mr")[15]
    dst = src.with_name("MR_extra.dcm")
    shutil.copy(src, dst)
    _edit(dst, lambda ds: setattr(ds, "SOPInstanceUID", generate_uid()))
    return "mr/" + dst.name


def _two_patients(up: Path) -> str:
    for f in _files(up, "mr"):
        _edit(f, lambda ds: setattr(ds, "PatientID", "SOMEONE-ELSE"))
    return "mr/" + _files(up, "mr")[0].name


def _no_ct(up: Path) -> None:
    shutil.rmtree(up / "ct")


def _no_mr(up: Path) -> None:
    shutil.rmtree(up / "mr")


def _undecodable(up: Path) -> str:
    f = _files(up, "mr")[3]

    def broken_jpeg(ds: pydicom.Dataset) -> None:
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.PixelData = encapsulate([b"\xff\xd8\xff\xdbnot-a-jpeg" + b"\x00" * 32])
        ds["PixelData"].VR = "OB"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7

    _edit(f, broken_jpeg)
    return "mr/" + f.name


def _missing_position(up: Path) -> str:
    f = _files(up, "ct")[2]
    _edit(f, lambda ds: delattr(ds, "ImagePositionPatient"))
    return "ct/" + f.name


def _too_few(up: Path) -> str:
    for f in _files(up, "mr")[2:]:
        f.unlink()
    return "mr/" + _files(up, "mr")[0].name


def _coronal_ct(up: Path) -> str:
    shutil.rmtree(up / "ct")
    coronal = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 1.0, 0.0)
    geom = Geometry.centred(np.zeros(3), (32, 24, 20), (4.0, 4.0, 4.0), coronal)
    tags = {"PatientID": "LLSYN000011", "StudyInstanceUID": "1.2.3.4", "SeriesInstanceUID": "1.2.3.4.5",
            "SeriesDescription": "CT HEAD COR", "RescaleIntercept": "-1024", "RescaleSlope": "1"}  # fmt: skip
    write_series(np.full((20, 24, 32), 1024, np.uint16), geom, up / "ct", modality="CT",
                 tags=tags, uid_parts=("coronal",), file_prefix="COR")  # fmt: skip
    return "ct/COR0001.dcm"


def _ambiguous_mr(up: Path) -> None:
    for f in _files(up, "mr"):

        def plain(ds: pydicom.Dataset) -> None:
            ds.SeriesDescription = "AX 3D"
            del ds.ContrastBolusAgent

        _edit(f, plain)
    other = up / "mr2"
    shutil.copytree(up / "mr", other)
    uid = generate_uid()
    for f in sorted(other.glob("*.dcm")):

        def second(ds: pydicom.Dataset) -> None:
            ds.SeriesInstanceUID = uid
            ds.SOPInstanceUID = generate_uid()
            ds.SeriesDescription = "AX 3D B"

        _edit(f, second)
    return None  # either series' first file may be named


CASES = [
    # (id, mutation, code, tag or None, message fragment)
    ("not_dicom", _only_text, "not_dicom", None, "no DICOM files"),
    ("corrupt", _corrupt, "corrupt_dicom", None, "cannot be"),
    ("no_pixel_data", _no_pixels, "no_pixel_data", "PixelData (7FE0,0010)", "no pixel data"),
    ("mixed_orientation", _mixed_orientation, "mixed_orientation", "ImageOrientationPatient (0020,0037)", "different orientations"),
    ("mixed_pixel_spacing", _mixed_pixel_spacing, "mixed_spacing", "PixelSpacing (0028,0030)", "different pixel spacings"),
    ("mixed_dimensions", _mixed_dimensions, "mixed_dimensions", "Rows/Columns (0028,0010)/(0028,0011)", "32x32"),
    ("missing_slice", _missing_slice, "missing_slices", "ImagePositionPatient (0020,0032)", "missing"),
    ("irregular_spacing", _irregular_spacing, "mixed_spacing", "ImagePositionPatient (0020,0032)", "irregular slice spacing"),
    ("duplicate_slice", _duplicate, "duplicate_slices", "ImagePositionPatient (0020,0032)", "same position"),
    ("two_patients", _two_patients, "multiple_patients", "PatientID (0010,0020)", "more than one patient"),
    ("no_ct", _no_ct, "no_ct", None, "no planning CT"),
    ("no_mr", _no_mr, "no_mr", None, "no MR series"),
    ("undecodable", _undecodable, "undecodable_pixels", "TransferSyntaxUID (0002,0010)", "cannot be decoded"),
    ("missing_position", _missing_position, "missing_tag", "ImagePositionPatient (0020,0032)", "ImagePositionPatient"),
    ("too_few_slices", _too_few, "too_few_slices", None, "only 2 slice"),
    ("non_axial_ct", _coronal_ct, "non_axial_ct", "ImageOrientationPatient (0020,0037)", "not axial"),
    ("ambiguous_mr", _ambiguous_mr, "ambiguous_mr", "SeriesDescription (0008,103E) / ContrastBolusAgent (0018,0010)", "none is recognisably"),
]  # fmt: skip


@pytest.mark.filterwarnings("ignore:The value length:UserWarning")
@pytest.mark.parametrize(
    ("mutate", "code", "tag", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_upload_is_refused_with_code_file_and_tag(
    upload: Path, mutate: Callable[[Path], str | None], code: str, tag: str | None, fragment: str
) -> None:  # fmt: skip
    expected_file = mutate(upload)
    with pytest.raises(IngestError) as info:
        ingest(upload)
    err = info.value
    assert err.code == code, str(err)
    assert isinstance(err, ValueError)
    assert fragment in err.message, err.message
    assert err.tag == tag
    if expected_file is not None:
        assert err.file == expected_file, str(err)
        assert expected_file in str(err)


def test_missing_source_path(tmp_path: Path) -> None:
    with pytest.raises(IngestError) as info:
        ingest(tmp_path / "nowhere")
    assert info.value.code == "not_found"


def test_exact_copy_of_a_slice_is_dropped_not_refused(upload: Path) -> None:
    src = sorted((upload / "ct").glob("*.dcm"))[4]
    shutil.copy(src, upload / "copy_of_slice.dcm")
    res = ingest(upload)
    assert res.ct.GetSize()[2] == len(list((upload / "ct").glob("*.dcm")))
    assert any("duplicate copy" in w for w in res.report["warnings"])


def test_ingest_error_survives_pickling() -> None:
    import pickle

    err = IngestError("missing_slices", "gap", file="a.dcm", tag="ImagePositionPatient (0020,0032)")
    back = pickle.loads(pickle.dumps(err))
    assert (back.code, back.file, back.tag, back.message) == (
        "missing_slices",
        "a.dcm",
        err.tag,
        "gap",
    )
