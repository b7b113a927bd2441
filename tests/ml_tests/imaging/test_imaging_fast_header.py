"""The pydicom-free header path (``ml.imaging.fast_header``) gives exactly pydicom's
FileHeader or declines: on every DICOM file the ingest tests build (each quirk kind of the
fault, error, HU and selection tests), on header oddities built here, on randomly damaged
headers and on pydicom's own test files. And a plain CT is scanned and loaded without
importing pydicom at all (the whole-process speed of ingest depends on it), while a quirky
one still gets pydicom."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian

from ml.imaging.dicom_io import FileHeader, ingest, read_header, read_header_pydicom
from ml.imaging.errors import IngestError
from ml.imaging.fast_header import header_fields
from tests.ml_tests.imaging import test_imaging_hu_volume as hu_tests
from tests.ml_tests.imaging import test_imaging_ingest_errors as error_tests
from tests.ml_tests.imaging import test_imaging_ingest_faults as fault_tests
from tests.ml_tests.imaging import test_imaging_ingest_quirks as quirk_tests
from tests.ml_tests.imaging import test_imaging_ingest_select as select_tests
from tests.ml_tests.imaging.ct_series import write_ct_series

ROOT = Path(__file__).resolve().parents[3]


def _parity(path: Path, name: str) -> bool:
    """Assert that the fast header of ``path`` equals pydicom's field by field, or that
    the fast path declined; True when it read the file."""
    fast = header_fields(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ref: list[FileHeader] | IngestError | None = read_header_pydicom(path, name)
        except IngestError as exc:
            ref = exc
    if fast is None:
        return False
    assert isinstance(ref, list) and len(ref) == 1, (name, ref)
    want = dataclasses.asdict(ref[0])
    got = dataclasses.asdict(FileHeader(path=path, name=name, **fast))  # type: ignore[arg-type]
    assert {k: v for k, v in got.items() if v != want[k]} == {}, (name, want)
    return True


def _parity_all(folder: Path) -> dict[str, bool]:
    """``_parity`` of every file under ``folder``, by path relative to it."""
    return {
        str(p.relative_to(folder)): _parity(p, p.name)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(autouse=True)
def _quiet_pydicom(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="pydicom")


# --- every input the ingest tests build ---------------------------------------------


def _rename(charset: str, name: str) -> Callable[[Path], None]:
    def mutate(up: Path) -> None:
        def rename(ds: pydicom.Dataset) -> None:
            ds.SpecificCharacterSet = charset
            ds.PatientName = name

        fault_tests.edit_all(fault_tests.series_files(up, "ct") + fault_tests.series_files(up, "mr"), rename)  # fmt: skip

    return mutate


def _hu_edit(edit: hu_tests.Edit) -> Callable[[Path], None]:
    return lambda up: hu_tests._edit(up, edit)


def _compress(syntax: str, **kwargs: object) -> Callable[[Path], None]:
    def mutate(up: Path) -> None:
        for f in fault_tests.series_files(up, "ct")[:4]:
            ds = pydicom.dcmread(f)
            try:
                ds.compress(syntax, **kwargs)
            except (RuntimeError, ValueError, ImportError) as exc:
                pytest.skip(f"cannot encode {syntax}: {exc}")
            ds.save_as(f, enforce_file_format=True)

    return mutate


def _enhanced_mr(up: Path) -> None:
    select_tests._to_enhanced_mr(up / "mr", up / "enhanced_mr.dcm")


BUILT = (
    [("plain", lambda up: None)]
    + [(f"fault_{c[0]}", c[1]) for c in fault_tests.ACCEPTED]
    + [(f"refused_{c[0]}", c[1]) for c in fault_tests.REFUSED]
    + [(f"charset_{c[0]}", _rename(c[1], c[2])) for c in fault_tests.CHARSETS]
    + [(f"error_{c[0]}", c[1]) for c in error_tests.CASES]
    + [(f"hu_{c[0]}", _hu_edit(c[1])) for c in hu_tests.CASES]
    + [(f"slice_air_{c[0]}", c[1]) for c in quirk_tests.SLICE_REFUSED]
    + [(f"padding_{c[0]}", quirk_tests._padding(c[1])) for c in quirk_tests.PADDED]
    + [(f"no_preamble_{c[0]}", c[1]) for c in quirk_tests.NO_PREAMBLE]
    + [(f"repaired_{c[0]}", c[1]) for c in quirk_tests.REPAIRED]
    + [(f"big_endian_{c[0]}", quirk_tests._big_endian("ct", c[2])) for c in quirk_tests.BYTE_ORDERS[:2]]
    + [
        ("clutter", select_tests._add_clutter),
        ("enhanced_mr", _enhanced_mr),
        ("rle", _compress(select_tests.RLELossless)),
        ("jpeg_ls", _compress(select_tests.JPEGLSLossless)),
        ("jpeg2000_lossless", _compress(select_tests.JPEG2000Lossless)),
        ("jpeg2000_lossy", _compress("1.2.840.10008.1.2.4.91", j2k_cr=[20], encoding_plugin="pylibjpeg")),
    ]
)  # fmt: skip


@pytest.mark.parametrize("mutate", [c[1] for c in BUILT], ids=[c[0] for c in BUILT])
def test_every_file_the_ingest_tests_build_reads_the_same(
    upload: Path, mutate: Callable[[Path], object]
) -> None:
    mutate(upload)
    _parity_all(upload)


def test_a_plain_study_is_read_by_the_fast_path_throughout(upload: Path) -> None:
    read = _parity_all(upload)
    assert len(read) == 46 + 48 and all(read.values())


@pytest.mark.parametrize("position", ["HFS", "HFP", "FFS"])
def test_written_ct_series_read_the_same(tmp_path: Path, position: str) -> None:
    write_ct_series(tmp_path, shape_dhw=(4, 12, 10), spacing_mm=(2.5, 0.7, 0.9), position=position,
                    spacing_header_mm=1.25)  # fmt: skip
    assert all(_parity_all(tmp_path).values())


# --- header oddities: (id, edit of one CT slice, read by the fast path?) ------------------------


def _set(**values: object) -> Callable[[Dataset], None]:
    def edit(ds: Dataset) -> None:
        for k, v in values.items():
            if v is None:
                delattr(ds, k)
            else:
                setattr(ds, k, v)

    return edit


def _implicit(ds: Dataset) -> None:
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian


def _pixels_ob(ds: Dataset) -> None:
    ds["PixelData"].VR = "OB"


def _two_frames(ds: Dataset) -> None:
    ds.NumberOfFrames = 2
    ds.PixelData = ds.PixelData * 2


def _eight_bit(ds: Dataset) -> None:
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = np.zeros((ds.Rows, ds.Columns), np.uint8).tobytes()


def _short_pixels(ds: Dataset) -> None:
    ds.PixelData = ds.PixelData[:-2]


def _private_and_sequence(ds: Dataset) -> None:
    block = ds.private_block(0x0029, "LESIONLOOP TEST", create=True)
    block.add_new(0x10, "LO", "private text")
    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    ds.ReferencedImageSequence = [item]


def _undefined_length_sequence(ds: Dataset) -> None:
    _private_and_sequence(ds)
    ds["ReferencedImageSequence"].is_undefined_length = True


def _long_header(size: int) -> Callable[[Dataset], None]:
    """A private OB element of ``size`` bytes before the pixels."""

    def edit(ds: Dataset) -> None:
        block = ds.private_block(0x0029, "LESIONLOOP TEST", create=True)
        block.add_new(0x11, "OB", b"\x00" * size)

    return edit


def _nested_undefined_sequences(ds: Dataset) -> None:
    """An undefined-length sequence whose undefined-length item holds another one."""
    inner = Dataset()
    inner.CodeValue, inner.CodingSchemeDesignator, inner.CodeMeaning = "T-A0100", "SRT", "Brain"
    outer = Dataset()
    outer.AnatomicRegionSequence = [inner]
    outer["AnatomicRegionSequence"].is_undefined_length = True
    outer.is_undefined_length_sequence_item = True
    outer.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    outer.ReferencedSOPClassUID = ds.SOPClassUID
    ds.ReferencedImageSequence = [outer, Dataset()]
    ds["ReferencedImageSequence"].is_undefined_length = True


def _vr_sh(ds: Dataset) -> None:
    ds["PatientID"].VR = "SH"


ODDITIES = [
    ("header_over_16_kib", _long_header(40_000), True),
    ("header_over_1_mib", _long_header(1_100_000), False),
    ("nested_undefined_sequences", _nested_undefined_sequences, True),
    ("other_vr_than_the_standard", _vr_sh, False),
    ("as_written", lambda ds: None, True),
    ("implicit_vr", _implicit, True),
    ("pixel_data_ob", _pixels_ob, True),
    ("no_charset", _set(SpecificCharacterSet=None), True),
    ("utf8_ascii_text", _set(SpecificCharacterSet="ISO_IR 192"), True),
    ("latin1_name", _set(SpecificCharacterSet="ISO_IR 100", PatientName="Müller^Jörg"), False),
    ("iso_ir_6", _set(SpecificCharacterSet="ISO_IR 6"), False),
    ("charset_two_terms", _set(SpecificCharacterSet=["", "ISO 2022 IR 87"]), False),
    ("unknown_charset", _set(SpecificCharacterSet="ISO_IR 999"), False),
    ("name_component_groups", _set(PatientName="Doe^John=Doe^J"), False),
    ("name_trailing_carets", _set(PatientName="Doe^John^^^"), True),
    ("padded_text", _set(SeriesDescription=" CT HEAD  ", PatientID=" P1", StudyDate=""), True),
    ("lowercase_codes", _set(Modality="ct", PhotometricInterpretation="monochrome1"), True),
    ("mr_tags", _set(MRAcquisitionType="3d", ContrastBolusAgent="Gd "), True),
    ("single_image_type", _set(ImageType="ORIGINAL"), True),
    ("empty_image_type", _set(ImageType=""), True),
    ("image_type_trailing_empty", _set(ImageType=["ORIGINAL", "PRIMARY", ""]), True),
    ("image_type_inner_spaces", _set(ImageType=["original", " PRIMARY", "AXIAL "]), True),
    ("image_type_part_padded", _set(ImageType=["ORIGINAL ", "PRIMARY", "AXIAL"]), True),
    ("no_image_type", _set(ImageType=None), True),
    ("text_with_backslash", _set(SeriesDescription="CT\\HEAD"), False),
    ("text_with_tab", _set(StudyDescription="A\tB"), False),
    ("ds_exponent_and_sign", _set(ImagePositionPatient=["-1.2e2", "+3E-1", ".5"]), True),
    ("ds_spaces", _set(PixelSpacing=[" 0.5", "0.5 "]), True),
    ("ds_not_finite", _set(PixelSpacing=["nan", "0.5"]), False),
    ("ds_overflow", _set(PixelSpacing=["1e999", "0.5"]), True),
    ("iop_five_values", _set(ImageOrientationPatient=[1, 0, 0, 0, 1]), True),
    ("empty_position", _set(ImagePositionPatient=""), True),
    ("no_pixel_spacing", _set(PixelSpacing=None), True),
    ("spacing_between_negative", _set(SpacingBetweenSlices="-1.1"), True),
    ("spacing_between_set", _set(SpacingBetweenSlices="2.5"), True),
    ("slope_zero", _set(RescaleSlope="0"), True),
    ("no_rescale", _set(RescaleSlope=None, RescaleIntercept=None), True),
    ("empty_intercept", _set(RescaleIntercept=""), True),
    ("fractional_rescale", _set(RescaleSlope="0.5", RescaleIntercept="-1024.25"), True),
    ("series_number_empty", _set(SeriesNumber=""), True),
    ("series_number_signed", _set(SeriesNumber="+7"), True),
    ("series_number_decimal", _set(SeriesNumber="7.0"), False),
    ("one_frame", _set(NumberOfFrames=1), True),
    ("two_frames", _two_frames, False),
    ("signed_pixels", _set(PixelRepresentation=1, BitsStored=16, HighBit=15), True),
    ("no_bits_stored", _set(BitsStored=None), True),
    ("no_samples_per_pixel", _set(SamplesPerPixel=None), True),
    ("three_samples", _set(SamplesPerPixel=3), False),
    ("eight_bit", _eight_bit, False),
    ("no_rows", _set(Rows=None), False),
    ("pixels_too_short", _short_pixels, False),
    ("no_pixel_data", _set(PixelData=None), False),
    ("lossy_flag_00", _set(LossyImageCompression="00"), True),
    ("lossy_flag_01", _set(LossyImageCompression="01", LossyImageCompressionRatio="8"), False),
    ("odd_length_uid", _set(SOPInstanceUID="1.2.826.0.1.3680043.99.12345"), True),
    ("sop_class_only_in_meta", _set(SOPClassUID=None), True),
    ("no_frame_of_reference", _set(FrameOfReferenceUID=None), True),
    ("private_tag_and_sequence", _private_and_sequence, True),
    ("undefined_length_sequence", _undefined_length_sequence, True),
]  # fmt: skip


def _trailing_padding(path: Path) -> None:
    with open(path, "ab") as fp:  # (FFFC,FFFC) OB, 4 bytes: after the pixels
        fp.write(b"\xfc\xff\xfc\xffOB\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00")


def _no_preamble(path: Path) -> None:
    path.write_bytes(path.read_bytes()[132:])


def _meta_says_implicit(path: Path) -> None:
    """Explicit VR data under a file meta that says Implicit VR Little Endian."""
    data = path.read_bytes()
    path.write_bytes(data.replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2\x00\x00", 1))


def _meta_says_explicit(path: Path) -> None:
    """Implicit VR data under a file meta that says Explicit VR Little Endian."""
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    old = b"\x02\x00\x10\x00UI\x12\x001.2.840.10008.1.2\x00"
    new = b"\x02\x00\x10\x00UI\x14\x001.2.840.10008.1.2.1\x00"
    assert old in data
    path.write_bytes(data.replace(old, new, 1))


def _implicit_undefined_sequence(path: Path) -> None:
    ds = pydicom.dcmread(path)
    _nested_undefined_sequences(ds)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)


RAW_ODDITIES = [
    ("meta_says_implicit_data_explicit", _meta_says_implicit, False),
    ("meta_says_explicit_data_implicit", _meta_says_explicit, False),
    ("implicit_nested_undefined_sequences", _implicit_undefined_sequence, True),
    ("trailing_padding", _trailing_padding, True),  # pydicom stops at the pixels too
    ("no_preamble", _no_preamble, False),
]  # fmt: skip


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(("edit", "fast"), [c[1:] for c in ODDITIES], ids=[c[0] for c in ODDITIES])
def test_header_oddities_read_the_same_or_go_to_pydicom(
    upload: Path, edit: Callable[[Dataset], None], fast: bool
) -> None:  # fmt: skip
    target = fault_tests.series_files(upload, "ct")[0]
    ds = pydicom.dcmread(target)
    edit(ds)
    ds.save_as(target, enforce_file_format=True)
    read = _parity_all(upload / "ct")
    assert read.pop(target.name) is fast
    assert all(read.values())


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(
    ("edit", "fast"), [c[1:] for c in RAW_ODDITIES], ids=[c[0] for c in RAW_ODDITIES]
)
def test_file_layout_oddities_read_the_same_or_go_to_pydicom(
    upload: Path, edit: Callable[[Path], None], fast: bool
) -> None:  # fmt: skip
    target = fault_tests.series_files(upload, "ct")[0]
    edit(target)
    assert _parity(target, target.name) is fast


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("modality", ["ct", "mr"])
def test_damaged_headers_read_the_same_or_go_to_pydicom(
    upload: Path, tmp_path: Path, modality: str
) -> None:  # fmt: skip
    """300 copies of a slice with 1-4 header bytes overwritten (NUL, space, backslash,
    0xFF, digits, signs, a random byte, a flipped bit): each reads as pydicom reads it,
    or goes to pydicom. (A 30,000-copy run of this found the per-part spacing of CS
    values and file meta VRs that pydicom misreads; none remain.)"""
    src = fault_tests.series_files(upload, modality)[0]
    data = src.read_bytes()
    (ref,) = read_header_pydicom(src, src.name)  # type: ignore[misc]
    end = ref.native[0] + 12  # type: ignore[index]
    rng = np.random.default_rng(0)
    choices = [0x00, 0x20, 0x5C, 0xFF, *b"0123456789.+-eE =^a"]
    read = []
    for k in range(300):
        damaged = bytearray(data)
        for at in rng.integers(132, end, size=int(rng.choice([1, 1, 2, 4]))):
            pick = int(rng.integers(len(choices) + 2))
            damaged[at] = (
                choices[pick] if pick < len(choices)
                else int(rng.integers(256)) if pick == len(choices)
                else damaged[at] ^ (1 << int(rng.integers(8)))
            )  # fmt: skip
        path = tmp_path / f"{k}.dcm"
        path.write_bytes(bytes(damaged))
        read.append(_parity(path, path.name))
    assert 50 < sum(read) < 300  # both paths taken


def test_a_damaged_pixel_tag_is_corrupt_dicom_not_a_crash(upload: Path) -> None:
    """PixelRepresentation stored as UL with 2 bytes: pydicom raises when it is read,
    which escaped ingest as its own exception before; now the file is ``corrupt_dicom``
    (ignored as a stray, the study still loads)."""
    data = fault_tests.series_files(upload, "ct")[0].read_bytes()
    good, bad = b"\x28\x00\x03\x01US\x02\x00", b"\x28\x00\x03\x01UL\x02\x00"
    assert data.count(good) == 1
    (upload / "damaged.dcm").write_bytes(data.replace(good, bad))
    assert header_fields(upload / "damaged.dcm") is None
    res = ingest(upload)
    assert [r["code"] for r in res.report["ignored"] if r["file"] == "damaged.dcm"] == [
        "corrupt_dicom"
    ]


# --- files nobody here wrote -------------------------------------------------------


@pytest.mark.filterwarnings("ignore")
def test_pydicoms_test_files_read_the_same_or_go_to_pydicom() -> None:
    pydicom_data = pytest.importorskip("pydicom.data")
    corpus = sorted(Path(p) for p in pydicom_data.get_testdata_files() if Path(p).is_file())
    assert len(corpus) > 50
    read = {str(p.relative_to(corpus[0].parents[1])): _parity(p, p.name) for p in corpus}
    # Ordinary slices (native little endian, ASCII) take the fast path: the 31 CR/CT/MR
    # images of dicomdirtests/ and 5 of test_files/ (MR_truncated's header is whole);
    # big endian, deflated, JPEG, RLE, no preamble and multi-frame files are pydicom's.
    fast = {k for k, v in read.items() if v}
    assert sum(k.startswith("test_files/dicomdirtests/") for k in fast) == 31
    assert {k for k in fast if not k.startswith("test_files/dicomdirtests/")} == {
        f"test_files/{n}"
        for n in ("CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_truncated.dcm",
                  "examples_overlay.dcm")
    }  # fmt: skip


def test_read_header_uses_either_reader(upload: Path) -> None:
    target = fault_tests.series_files(upload, "ct")[0]
    (fast,) = read_header(target, "a.dcm")  # type: ignore[misc]
    assert fast == read_header_pydicom(target, "a.dcm")[0]  # type: ignore[index]
    _rename("ISO_IR 100", "Müller^Jörg")(upload)
    (slow,) = read_header(target, "a.dcm")  # type: ignore[misc]
    assert header_fields(target) is None and slow.patient_name == "Müller^Jörg"


# --- no pydicom on the common path -------------------------------------------------

_PROBE = """
import sys
from pathlib import Path
import ml.imaging.dicom_io as dicom_io
after_import = "pydicom" in sys.modules
series, _ = dicom_io.scan(Path(sys.argv[1]))
img = dicom_io.load_series(series[0], [])
print(after_import, "pydicom" in sys.modules, img.GetSize(), img.GetPixelIDTypeAsString(),
      series[0].first.patient_name)
"""


def _probe(folder: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(folder)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout.strip()


def test_a_plain_ct_is_scanned_and_loaded_without_importing_pydicom(tmp_path: Path) -> None:
    write_ct_series(tmp_path / "ct", shape_dhw=(5, 16, 12), spacing_mm=(2.0, 0.5, 0.5))
    assert _probe(tmp_path / "ct") == "False False (12, 16, 5) 16-bit signed integer Export^Test"


def test_a_quirky_ct_still_gets_pydicom(tmp_path: Path) -> None:
    """A Latin-1 patient name: pydicom reads the headers (and decodes the name)."""
    write_ct_series(tmp_path / "ct", shape_dhw=(5, 16, 12), spacing_mm=(2.0, 0.5, 0.5))
    fault_tests.edit_all(
        sorted((tmp_path / "ct").glob("*.dcm")),
        _set(SpecificCharacterSet="ISO_IR 100", PatientName="Müller^Jörg"),
    )
    assert _probe(tmp_path / "ct") == "False True (12, 16, 5) 16-bit signed integer Müller^Jörg"
