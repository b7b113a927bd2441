"""Find the planning CT and the contrast T1 MR in an upload, and load them as volumes.

An upload is a folder tree or a zip of DICOM files in any order and nesting. Files
are grouped by study and series; the planning CT (the axial CT series with the most
slices) and the contrast-enhanced T1 MR are chosen, everything else is listed as
ignored with the reason. The two chosen series are then validated slice by slice;
anything that would put a voxel in the wrong place raises ``IngestError`` naming
the file and the tag.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from ml.imaging.archive import safe_extract
from ml.imaging.errors import IngestError
from ml.imaging.fast_header import header_fields, rescale_repair_note
from ml.imaging.geometry import (
    ORIENTATION_TOLERANCE,
    SAME_POSITION_MM,
    drop_repeated_positions,
    order_along_normal,
    slice_axes,
)
from ml.imaging.hu_volume import NativeSlice, pixel_data_start, read_hu_int16
from ml.imaging.sanity import (
    check_ct_slice_air,
    check_image,
    check_pixel_spacing,
    check_slice_step,
)

if TYPE_CHECKING:  # pydicom is imported where a file needs it (``read_header``): ~0.2 s
    import pydicom

TAG_PIXEL_DATA = "PixelData (7FE0,0010)"
TAG_IOP = "ImageOrientationPatient (0020,0037)"
TAG_IPP = "ImagePositionPatient (0020,0032)"
TAG_PIXEL_SPACING = "PixelSpacing (0028,0030)"
TAG_ROWS_COLS = "Rows/Columns (0028,0010)/(0028,0011)"
TAG_PATIENT_ID = "PatientID (0010,0020)"
TAG_TRANSFER_SYNTAX = "TransferSyntaxUID (0002,0010)"
TAG_MODALITY = "Modality (0008,0060)"
TAG_SOP_INSTANCE = "SOPInstanceUID (0008,0018)"
TAG_FRAME_OF_REFERENCE = "FrameOfReferenceUID (0020,0052)"
TAG_CHARSET = "SpecificCharacterSet (0008,0005)"
TAG_LOSSY = "LossyImageCompression (0028,2110)"

# Transfer syntaxes whose pixel data has (or may have) lost information.
LOSSY_TRANSFER_SYNTAXES = {
    "1.2.840.10008.1.2.4.50": "JPEG Baseline (Process 1)",
    "1.2.840.10008.1.2.4.51": "JPEG Extended (Process 2 & 4)",
    "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000 (lossy allowed)",
    "1.2.840.10008.1.2.4.93": "JPEG 2000 Part 2 Multi-component (lossy allowed)",
    "1.2.840.10008.1.2.4.203": "High-Throughput JPEG 2000 (lossy allowed)",
}
# Air in a CT: its median below -500 HU must fall in this range (HU).
CT_AIR_RANGE_HU = (-1100.0, -900.0)

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
AXIAL_TOLERANCE_DEG = 3.0
MIN_SLICES = 3

_EXCLUDE_MR = re.compile(
    r"FLAIR|T2|DWI|DIFF|ADC|TRACE|SWI|SWAN|PERF|DSC|DCE|DTI|TOF|ANGIO|MRA|PD\b|STIR|B0|FIELD|"
    r"LOC|SCOUT|SURVEY|3.?PLANE|CALIB|ASSET|MIP|MPR|SUB|REFORM|MINIP",
    re.I,
)
_T1 = re.compile(r"T1|MPRAGE|MP-RAGE|MP RAGE|SPGR|BRAVO|VIBE|TFE|FLASH|MPR\b|3D GRE|SE\b", re.I)
_CONTRAST = re.compile(r"\+ ?C\b|C\+|POST|GAD|\bGD\b|CONTRAST|\bKM\b|MDC|\bCE\b|ENHANC", re.I)
_PRE = re.compile(r"\bPRE\b|NATIVE|NON.?CON|W/?O\b|WITHOUT", re.I)


@dataclass
class FileHeader:
    """The header fields of one DICOM file that grouping and selection need."""

    path: Path
    name: str  # path relative to the upload root, for messages
    sop_class: str
    sop_instance: str
    modality: str
    study_uid: str
    series_uid: str
    patient_id: str
    patient_name: str
    series_description: str
    study_description: str
    study_date: str
    image_type: tuple[str, ...]
    iop: tuple[float, ...] | None
    ipp: tuple[float, ...] | None
    pixel_spacing: tuple[float, ...] | None
    rows: int | None
    columns: int | None
    n_frames: int
    contrast_agent: str
    acquisition_type: str
    series_number: int | None
    frame: int | None = None  # frame index (0-based) within a multi-frame object
    slope: float | None = None  # per-frame rescale of enhanced objects
    intercept: float | None = None
    frame_uid: str = ""  # FrameOfReferenceUID
    spacing_between: float | None = None  # SpacingBetweenSlices header (mm), if any
    photometric: str = ""  # PhotometricInterpretation
    charset_note: str = ""  # why the text of the header was decoded with a fallback, if it was
    native: tuple[int, str, int] | None = None  # _native_layout: pixels read from the file
    slope_intercept: tuple[float, float] | None = None  # RescaleSlope/Intercept of a file
    lossy: str | None = None  # _lossy: how the pixels were lossily compressed
    forced: bool = False  # read with force=True (no 128-byte preamble): every later read too
    rescale_note: str = ""  # how a rescale value was repaired (rescale_repair_note), if it was


class Note(str):
    """A line of the ingest report (a ``str``, so older callers read it as text) with
    its ``kind`` (a slug: ``localizer_dropped``, ``lossy_compression`` ...) and the
    ``files`` / ``series`` it is about."""

    kind: str
    files: tuple[str, ...]
    series: str | None

    def __new__(
        cls, kind: str, message: str, files: Iterable[str] = (), series: str | None = None
    ) -> Note:
        note = super().__new__(cls, message)
        note.kind = kind
        note.files = tuple(files)
        note.series = series
        return note

    def row(self) -> dict[str, object]:
        """The report row: ``{kind, severity, message, files, series}`` (JSON)."""
        return {
            "kind": self.kind,
            "severity": severity_of(self.kind),
            "message": str(self),
            "files": list(self.files),
            "series": self.series,
        }


# Report row kinds that only say what ingest left out or tidied (``info``); every other
# kind is a doubt about values a clinician relies on (``warning``: lossy compression,
# a doubtful registration, a character-set fallback, a disagreeing spacing header ...).
INFO_KINDS = frozenset({"ignored", "localizer_dropped", "duplicate_dropped", "registration"})


def severity_of(kind: str) -> str:
    """``info`` or ``warning`` for a report row kind (``INFO_KINDS``)."""
    return "info" if kind in INFO_KINDS else "warning"


def report_rows(report: dict[str, list]) -> list[dict[str, object]]:
    """What ingest ignored, repaired or doubts as rows ``{kind, severity, message, files,
    series}``: every ignored file or series (``kind`` its refusal code or ``ignored``,
    severity ``info``) and every warning (its ``Note`` kind, or ``warning`` for plain
    text; ``severity_of``)."""
    rows: list[dict[str, object]] = []
    for r in report.get("ignored", []):
        what = r.get("series_description") or r.get("file") or r.get("example_file") or ""
        rows.append(
            {
                "kind": r.get("code") or "ignored",
                "severity": "info",
                "message": f"ignored {what}: {r.get('reason', '')}".strip(),
                "files": [f for f in (r.get("file") or r.get("example_file"),) if f],
                "series": r.get("series_uid"),
            }
        )
    for w in report.get("warnings", []):
        rows.append(
            w.row()
            if isinstance(w, Note)
            else {
                "kind": "warning",
                "severity": "warning",
                "message": str(w),
                "files": [],
                "series": None,
            }
        )
    return rows


@dataclass
class Series:
    study_uid: str
    series_uid: str
    modality: str
    files: list[FileHeader] = field(default_factory=list)

    @property
    def first(self) -> FileHeader:
        return self.files[0]

    @property
    def description(self) -> str:
        return self.first.series_description

    def n_positions(self) -> int:
        pos = {tuple(np.round(f.ipp, 2)) for f in self.files if f.ipp is not None}
        return len(pos)

    def summary(self) -> dict[str, object]:
        return {
            "study_uid": self.study_uid,
            "series_uid": self.series_uid,
            "modality": self.modality,
            "series_description": self.description,
            "series_number": self.first.series_number,
            "n_files": len(self.files),
            "orientation": orientation_name(self.majority_iop()),
            "example_file": self.first.name,
        }

    def majority_iop(self) -> tuple[float, ...] | None:
        groups = orientation_groups([f.iop for f in self.files if f.iop is not None])
        return max(groups, key=len)[0] if groups else None


def same_orientation(a: Iterable[float], b: Iterable[float]) -> bool:
    """Two ImageOrientationPatient values agree to ``ORIENTATION_TOLERANCE`` per
    component: the one orientation tolerance of ingest, the exporters and selection."""
    return bool(
        np.max(np.abs(np.asarray(a, float) - np.asarray(b, float))) <= ORIENTATION_TOLERANCE
    )


def orientation_groups(iops: Iterable[tuple[float, ...]]) -> list[list[tuple[float, ...]]]:
    """The orientations grouped: each joins the first group whose first member it
    matches (``same_orientation``), so scanner rounding noise never splits a series."""
    groups: list[list[tuple[float, ...]]] = []
    for iop in iops:
        for g in groups:
            if same_orientation(g[0], iop):
                g.append(iop)
                break
        else:
            groups.append([iop])
    return groups


@dataclass
class IngestResult:
    ct: sitk.Image  # HU: int16 when the series allows it (load_series), else float32
    mr: sitk.Image  # float32, scanner units
    ct_series: Series
    mr_series: Series
    report: dict[str, list]
    dicom: dict[str, str]
    # RT Structure Sets found beside the images (full data sets, for ground truth).
    rtstructs: list[pydicom.Dataset] = field(default_factory=list)


def _num_list(ds: pydicom.Dataset, keyword: str, n: int) -> tuple[float, ...] | None:
    value = ds.get(keyword)
    if value is None:
        return None
    try:
        out = tuple(float(v) for v in (value if isinstance(value, Iterable) else [value]))
    except (TypeError, ValueError):
        return None
    return out if len(out) == n and all(np.isfinite(out)) else None


def _positive(ds: pydicom.Dataset, keyword: str) -> float | None:
    """A single positive finite number, or None when absent or malformed."""
    values = _num_list(ds, keyword, 1)
    return values[0] if values and values[0] > 0 else None


def _str(ds: pydicom.Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def orientation_name(iop: tuple[float, ...] | None) -> str:
    if iop is None:
        return "unknown"
    normal = np.cross(iop[:3], iop[3:])
    axis = int(np.argmax(np.abs(normal)))
    angle = np.degrees(np.arccos(min(1.0, abs(normal[axis]) / max(np.linalg.norm(normal), 1e-9))))
    name = ("sagittal", "coronal", "axial")[axis]
    return name if angle <= AXIAL_TOLERANCE_DEG else f"oblique ({name}-like, {angle:.0f} deg)"


def is_axial(iop: tuple[float, ...] | None) -> bool:
    return orientation_name(iop) == "axial"


def _frames(ds: pydicom.Dataset, base: FileHeader) -> list[FileHeader]:
    """One header per frame of an enhanced (multi-frame) image, from its functional
    groups; ``[base]`` when the per-frame geometry is not there."""
    per = ds.get("PerFrameFunctionalGroupsSequence")
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    if not per or len(per) != base.n_frames:
        return [base]

    def find(item: pydicom.Dataset, seq_kw: str, attr: str, n: int) -> tuple[float, ...] | None:
        for group in (item, shared):
            seq = group.get(seq_kw) if group is not None else None
            if seq:
                value = _num_list(seq[0], attr, n)
                if value is not None:
                    return value
        return None

    out = []
    for i, item in enumerate(per):
        slope = find(item, "PixelValueTransformationSequence", "RescaleSlope", 1)
        intercept = find(item, "PixelValueTransformationSequence", "RescaleIntercept", 1)
        note = rescale_repair_note(slope[0] if slope else None) or base.rescale_note
        out.append(
            replace(
                base,
                name=f"{base.name} [frame {i + 1}]",
                ipp=find(item, "PlanePositionSequence", "ImagePositionPatient", 3),
                iop=find(item, "PlaneOrientationSequence", "ImageOrientationPatient", 6),
                pixel_spacing=find(item, "PixelMeasuresSequence", "PixelSpacing", 2),
                frame=i,
                slope=(slope[0] or 1.0) if slope else None,  # 0 read as 1, noted
                intercept=intercept[0] if intercept else None,
                rescale_note=note,
            )
        )
    return out


def read_header(path: Path, name: str) -> list[FileHeader] | None:
    """The file's header (one per frame for enhanced multi-frame images), or None if it
    is not DICOM at all.

    An ordinary slice (one frame, uncompressed little endian, 16-bit grey, ASCII text)
    is read by ``ml.imaging.fast_header`` (the same fields, without importing pydicom);
    everything else by pydicom (``read_header_pydicom``). Raises ``IngestError``
    ``corrupt_dicom`` for a file that looks like DICOM but cannot be read.
    """
    fields = header_fields(path)
    if fields is not None:
        return [FileHeader(path=path, name=name, **fields)]  # type: ignore[arg-type]
    return read_header_pydicom(path, name)


def read_header_pydicom(path: Path, name: str) -> list[FileHeader] | None:
    """``read_header`` by pydicom, for any file."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    pixel_offset = None
    forced = False
    try:
        with open(path, "rb") as fp:
            ds = pydicom.dcmread(fp, stop_before_pixels=True)
            pixel_offset = fp.tell()  # where PixelData starts, when the file has it
    except InvalidDicomError:
        # Some exporters omit the 128-byte preamble: accept only if it parses as an image,
        # and read it with force=True ever after (``FileHeader.forced``).
        try:
            with open(path, "rb") as fp:
                ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
                pixel_offset = fp.tell()
            if "SOPClassUID" not in ds or not str(ds.SOPClassUID).startswith("1.2"):
                return None
            forced = True
        except Exception:
            return None
    except Exception as exc:  # a DICOM preamble and then garbage
        raise IngestError(
            "corrupt_dicom", f"the file looks like DICOM but cannot be read ({exc})", file=name
        ) from exc
    try:  # a damaged element may raise while read here too (a pixel tag of another VR)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            headers = _headers_of(ds, path, name)
        note = _charset_note(ds, caught, headers[0])
        native = _native_layout(ds, pixel_offset) if len(headers) == 1 else None
    except Exception as exc:
        raise IngestError(
            "corrupt_dicom", f"the DICOM header cannot be interpreted ({exc})", file=name
        ) from exc
    if note or native or forced:
        headers = [replace(h, charset_note=note, native=native, forced=forced) for h in headers]
    return headers


def _native_layout(ds: pydicom.Dataset, offset: int | None) -> tuple[int, str, int] | None:
    """``(byte offset of the PixelData element, stored dtype, BitsStored)`` of an
    uncompressed little-endian 16-bit grey-level slice, so that loading reads its pixels
    straight from the file; None for anything else (left to pydicom)."""
    ts = _transfer_syntax(ds)
    if offset is None or ts not in _NATIVE_LE or ds.get("BitsAllocated") != 16:
        return None
    if int(ds.get("SamplesPerPixel") or 1) != 1:
        return None
    signed = int(ds.get("PixelRepresentation") or 0) == 1
    return offset, "<i2" if signed else "<u2", int(ds.get("BitsStored") or 16)


_CHARSET_WARNING = re.compile(r"encoding|character set|decod", re.I)


def _charset_note(
    ds: pydicom.Dataset, caught: list[warnings.WarningMessage], header: FileHeader
) -> str:
    """Why the header's text was decoded with a fallback ('' when it was not): a
    SpecificCharacterSet term pydicom does not know (unknown or malformed: pydicom
    decodes with its default or a guess), a decoding warning, or non-ASCII text in a
    header that declares no character set (or ISO_IR 6, ASCII): pydicom guesses
    Latin-1 for it."""
    import pydicom
    from pydicom.charset import python_encoding

    value = ds.get("SpecificCharacterSet")
    terms = (
        []
        if value is None
        else [
            str(v).strip()
            for v in (
                value if isinstance(value, list | tuple | pydicom.multival.MultiValue) else [value]
            )
        ]
    )
    unknown = [t for t in terms if t and t not in python_encoding]
    if unknown:
        return f"SpecificCharacterSet {_fmt_multi(terms)}: unknown or malformed term {unknown[0]!r}"
    messages = sorted({str(w.message) for w in caught if _CHARSET_WARNING.search(str(w.message))})
    if messages:
        return f"SpecificCharacterSet {_fmt_multi(terms)}: {messages[0]}"
    texts = (
        header.patient_name,
        header.patient_id,
        header.series_description,
        header.study_description,
        header.contrast_agent,
    )
    if all(t in ("", "ISO_IR 6") for t in terms) and not all(t.isascii() for t in texts):
        declared = _fmt_multi(terms) if any(terms) else "absent"
        return (
            f"SpecificCharacterSet {declared} (ASCII) but the text holds non-ASCII bytes: "
            "read as Latin-1 (ISO_IR 100), a guess"
        )
    return ""


def _headers_of(ds: pydicom.Dataset, path: Path, name: str) -> list[FileHeader]:
    """The header(s) of ``ds``: one per frame of an enhanced multi-frame image."""
    meta = getattr(ds, "file_meta", None)
    sop_class = _str(ds, "SOPClassUID") or (
        _str(meta, "MediaStorageSOPClassUID") if meta is not None else ""
    )
    if not sop_class:
        raise ValueError("no SOP Class UID: the data set is empty or truncated")
    n_frames = int(ds.get("NumberOfFrames") or 1)
    rows = ds.get("Rows")
    cols = ds.get("Columns")
    series_number = ds.get("SeriesNumber")
    base = FileHeader(
        path=path,
        name=name,
        sop_class=sop_class,
        sop_instance=_str(ds, "SOPInstanceUID"),
        modality=_str(ds, "Modality").upper(),
        study_uid=_str(ds, "StudyInstanceUID"),
        series_uid=_str(ds, "SeriesInstanceUID"),
        patient_id=_str(ds, "PatientID"),
        patient_name=_str(ds, "PatientName"),
        series_description=_str(ds, "SeriesDescription"),
        study_description=_str(ds, "StudyDescription"),
        study_date=_str(ds, "StudyDate"),
        image_type=tuple(str(v).upper() for v in (ds.get("ImageType") or [])),
        iop=_num_list(ds, "ImageOrientationPatient", 6),
        ipp=_num_list(ds, "ImagePositionPatient", 3),
        pixel_spacing=_num_list(ds, "PixelSpacing", 2),
        rows=int(rows) if rows is not None else None,
        columns=int(cols) if cols is not None else None,
        n_frames=n_frames,
        contrast_agent=_str(ds, "ContrastBolusAgent"),
        acquisition_type=_str(ds, "MRAcquisitionType").upper(),
        series_number=int(series_number) if series_number not in (None, "") else None,
        frame_uid=_str(ds, "FrameOfReferenceUID"),
        spacing_between=_positive(ds, "SpacingBetweenSlices"),
        photometric=_str(ds, "PhotometricInterpretation").upper(),
        slope_intercept=(
            float(ds.get("RescaleSlope") or 1.0),
            float(ds.get("RescaleIntercept") or 0.0),
        ),
        lossy=_lossy(ds),
        rescale_note=rescale_repair_note(_num_list(ds, "RescaleSlope", 1)),
    )
    return _frames(ds, base) if n_frames > 1 else [base]


def _walk(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            out.append(Path(dirpath) / f)
    return sorted(out)


def scan(root: Path, display_root: Path | None = None) -> tuple[list[Series], list[dict]]:
    """Group every DICOM file under ``root`` by series; list what is not DICOM."""
    ignored: list[dict] = []
    series: dict[tuple[str, str], Series] = {}
    base = display_root or (root if root.is_dir() else root.parent)
    n_files = 0
    for path in _walk(root):
        n_files += 1
        name = str(path.relative_to(base)) if path.is_relative_to(base) else path.name
        if path.name.startswith("._") or path.name in (".DS_Store", "Thumbs.db"):
            ignored.append({"file": name, "reason": "operating-system metadata file"})
            continue
        try:
            headers = read_header(path, name)
        except IngestError as exc:
            # Kept as a row: ``ingest`` raises it only if the study turns out incomplete.
            ignored.append({"file": name, "reason": exc.message, "code": exc.code, "tag": exc.tag})
            continue
        if headers is None:
            ignored.append({"file": name, "reason": "not a DICOM file"})
            continue
        hdr = headers[0]
        if hdr.sop_class == DICOMDIR_SOP_CLASS or path.name.upper() == "DICOMDIR":
            ignored.append(
                {"file": name, "reason": "DICOMDIR index (the files themselves are read)"}
            )
            continue
        key = (hdr.study_uid, hdr.series_uid)
        if key not in series:
            series[key] = Series(hdr.study_uid, hdr.series_uid, hdr.modality)
        series[key].files.extend(headers)
    if not series:
        unreadable = [r for r in ignored if r.get("code")]
        if unreadable:
            raise _unreadable_error(unreadable[0])
        first = ignored[0]["file"] if ignored else None
        raise IngestError(
            "not_dicom",
            f"no DICOM files found in the upload ({n_files} file(s) examined)",
            file=first,
        )
    return list(series.values()), ignored


def _unreadable_error(row: dict) -> IngestError:
    return IngestError(row["code"], row["reason"], file=row["file"], tag=row.get("tag"))


def check_single_patient(all_series: list[Series]) -> None:
    seen: dict[str, FileHeader] = {}
    for s in all_series:
        for f in s.files:
            if f.patient_id and f.patient_id not in seen:
                seen[f.patient_id] = f
    if len(seen) > 1:
        (a, fa), (b, fb) = list(seen.items())[:2]
        raise IngestError(
            "multiple_patients",
            f"the upload holds more than one patient: {a!r} ({fa.patient_name or 'no name'}) "
            f"and {b!r} ({fb.patient_name or 'no name'}); upload one patient at a time",
            file=fb.name,
            tag=TAG_PATIENT_ID,
        )


def _is_localizer(s: Series) -> bool:
    it = s.first.image_type
    desc = s.description.upper()
    return (
        "LOCALIZER" in it
        or "SCOUT" in it
        or any(
            k in desc for k in ("LOCALIZER", "SCOUT", "SURVEY", "TOPOGRAM", "3-PLANE", "3 PLANE")
        )
        or len(orientation_groups(f.iop for f in s.files if f.iop)) > 2
    )


def _is_localizer_image(f: FileHeader) -> bool:
    return "LOCALIZER" in f.image_type or "SCOUT" in f.image_type


def split_localizer_images(s: Series) -> tuple[Series, list[FileHeader]]:
    """``(s without its localizer images, the localizer images)``: a scanner may store
    the scout in the series it plans (same SeriesInstanceUID, ImageType ...\\LOCALIZER,
    another orientation and size). A series of nothing but localizers is left whole."""
    scouts = [f for f in s.files if _is_localizer_image(f)]
    if not scouts or len(scouts) == len(s.files):
        return s, []
    return replace(s, files=[f for f in s.files if not _is_localizer_image(f)]), scouts


def _non_image_reason(s: Series) -> str | None:
    f = s.first
    if s.modality not in ("CT", "MR"):
        return f"modality {s.modality or 'unknown'} is not used (only a planning CT and a contrast T1 MR are)"
    if f.sop_class.startswith(SECONDARY_CAPTURE_PREFIX):
        return "secondary capture (a screenshot or dose report), not a volume"
    if f.n_frames > 1 and f.frame is None:
        return "multi-frame image without per-frame positions: not supported"
    if _is_localizer(s):
        return "localizer / scout images"
    if f.rows is None or f.columns is None:
        return "no image matrix (Rows/Columns missing): not an image"
    return None


def _geometry_problem(s: Series) -> IngestError | None:
    for f in s.files:
        for value, tag in (
            (f.iop, TAG_IOP),
            (f.ipp, TAG_IPP),
            (f.pixel_spacing, TAG_PIXEL_SPACING),
        ):
            if value is None:
                return IngestError(
                    "missing_tag",
                    f"{s.modality} series {s.description!r}: a slice lacks a valid {tag.split()[0]}, "
                    "so it cannot be placed in space",
                    file=f.name,
                    tag=tag,
                )
    return None


def _mr_score(s: Series) -> tuple[bool, bool, bool]:
    """(excluded, looks T1, looks contrast-enhanced)."""
    desc = s.description
    excluded = bool(_EXCLUDE_MR.search(desc)) and not re.search(r"MPRAGE|MP-RAGE", desc, re.I)
    t1 = bool(_T1.search(desc))
    contrast = bool(s.first.contrast_agent) or bool(_CONTRAST.search(desc))
    if _PRE.search(desc) and not re.search(r"POST|\+ ?C|C\+", desc, re.I):
        contrast = False
    return excluded, t1, contrast


@dataclass
class _Sorting:
    """Series sorted into CT / MR candidates, with the report rows gathered so far."""

    found: list[dict] = field(default_factory=list)
    ignored: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ct_cands: list[Series] = field(default_factory=list)
    mr_cands: list[Series] = field(default_factory=list)
    ct_problems: list[IngestError] = field(default_factory=list)
    mr_problems: list[IngestError] = field(default_factory=list)


def _non_axial_ct(s: Series) -> IngestError:
    return IngestError(
        "non_axial_ct",
        f"CT series {s.description!r} is {orientation_name(s.majority_iop())}, "
        "not axial; the planning CT must be an axial acquisition",
        file=s.first.name,
        tag=TAG_IOP,
    )


def _sort_candidates(all_series: list[Series]) -> _Sorting:
    """Every series in (modality, series number, UID) order: listed in ``found``, then
    ignored with its reason (not an image volume, no geometry, non-axial CT) or kept as
    a CT or MR candidate. Geometry and orientation problems are kept to raise later
    when no candidate of that modality is left."""
    out = _Sorting()
    for s in sorted(
        all_series, key=lambda s: (s.modality, s.first.series_number or 0, s.series_uid)
    ):
        if s.modality in ("CT", "MR"):
            s, scouts = split_localizer_images(s)
            if scouts:
                out.warnings.append(
                    Note(
                        "localizer_dropped",
                        f"{s.modality} series {s.description!r}: {len(scouts)} localizer "
                        "image(s) stored in the series were left out; the axial stack is used",
                        files=[f.name for f in scouts],
                        series=s.series_uid,
                    )
                )
        out.found.append(s.summary())
        reason = _non_image_reason(s)
        if reason:
            out.ignored.append({**s.summary(), "reason": reason})
            continue
        problem = _geometry_problem(s)
        if problem is not None:
            (out.ct_problems if s.modality == "CT" else out.mr_problems).append(problem)
            out.ignored.append({**s.summary(), "reason": problem.message})
            continue
        if s.modality == "CT":
            if not is_axial(s.majority_iop()):
                out.ct_problems.append(_non_axial_ct(s))
                out.ignored.append({**s.summary(), "reason": "CT is not axial"})
                continue
            out.ct_cands.append(s)
        else:
            out.mr_cands.append(s)
    return out


def _pick_ct(sorting: _Sorting) -> Series:
    """The axial CT with the most slice positions (then files); the others are ignored.

    Raises the first CT problem met, or ``no_ct`` when the upload holds no CT at all.
    """
    _require_candidates(
        sorting.ct_cands, sorting.ct_problems, sorting.ignored, "no_ct",
        "no planning CT found in the upload",
    )  # fmt: skip
    ct = max(sorting.ct_cands, key=lambda s: (s.n_positions(), len(s.files)))
    for s in sorting.ct_cands:
        if s is not ct:
            sorting.ignored.append({**s.summary(), "reason": "another CT series with fewer slices"})
    return ct


def _contrast_t1_shortlist(
    usable: list[tuple[Series, bool, bool]], sorting: _Sorting
) -> list[Series]:
    """The MR series that may be the contrast T1: T1 and contrast, else contrast, else
    the only usable MR (with a warning). ``no_mr`` when no MR is usable,
    ``ambiguous_mr`` when several are and none is recognisably contrast-enhanced."""
    best = [s for s, t1, c in usable if t1 and c]
    if not best:
        best = [s for s, _t1, c in usable if c]
    if not best and len(usable) == 1:
        best = [usable[0][0]]
        sorting.warnings.append(
            f"MR series {best[0].description!r} is not recognisably a contrast-enhanced T1 "
            "(no contrast agent tag or +C in its description); used as the only MR volume"
        )
    if best:
        return best
    if not usable:
        raise IngestError(
            "no_mr",
            "no contrast-enhanced T1 MR found; MR series present: "
            + ", ".join(repr(s.description) for s in sorting.mr_cands),
        )
    raise IngestError(
        "ambiguous_mr",
        "several MR series and none is recognisably a contrast-enhanced T1: "
        + ", ".join(repr(s.description) for s, _t, _c in usable)
        + "; upload only the contrast T1",
        file=usable[0][0].first.name,
        tag="SeriesDescription (0008,103E) / ContrastBolusAgent (0018,0010)",
    )


def _mr_preference(s: Series) -> tuple[bool, bool, bool, int, int]:
    """Sort key among contrast-T1 candidates, the best last.

    Prefer an explicit "+C"/"post" description over a contrast-agent tag alone (some
    scanners tag every series after injection), then 3D, original data, the later
    series (post-contrast is acquired after pre-contrast), then more slices.
    """
    return (
        bool(_CONTRAST.search(s.description)),
        s.first.acquisition_type == "3D",
        "DERIVED" not in s.first.image_type,
        s.first.series_number or 0,
        s.n_positions(),
    )


def _pick_mr(sorting: _Sorting) -> Series:
    """The contrast-enhanced T1 MR; other MR series are ignored with the reason.

    Raises the first MR problem met or ``no_mr`` when no MR is left, and the errors
    of ``_contrast_t1_shortlist``.
    """
    _require_candidates(
        sorting.mr_cands, sorting.mr_problems, sorting.ignored, "no_mr",
        "no MR series found in the upload; a contrast-enhanced T1 MR is required",
    )  # fmt: skip
    scored = [(s, *_mr_score(s)) for s in sorting.mr_cands]
    usable = [(s, t1, c) for s, ex, t1, c in scored if not ex]
    for s, ex, _t1, _c in scored:
        if ex:
            sorting.ignored.append({**s.summary(), "reason": "MR sequence other than contrast T1"})
    mr = max(_contrast_t1_shortlist(usable, sorting), key=_mr_preference)
    for s, _t1, _c in usable:
        if s is not mr:
            sorting.ignored.append(
                {**s.summary(), "reason": "another MR series; a better contrast T1 was chosen"}
            )
    return mr


def _role(series_uid: str, ct: Series, mr: Series) -> str | None:
    if series_uid == ct.series_uid:
        return "planning_ct"
    if series_uid == mr.series_uid:
        return "contrast_t1_mr"
    return None


def choose_series(
    all_series: list[Series],
) -> tuple[Series, Series, dict[str, list]]:
    """Pick the planning CT and the contrast T1 MR; say why every other series is ignored.

    Returns ``(ct, mr, report)`` with ``report`` = ``{"found": [...], "ignored": [...],
    "warnings": [...]}``: every series' ``Series.summary`` with its ``role``
    (``planning_ct``, ``contrast_t1_mr`` or None), the ignored series with a
    ``reason``, and warnings in words. Raises ``IngestError``: ``no_ct``, ``no_mr``,
    ``ambiguous_mr``, ``non_axial_ct``, ``missing_tag``.
    """
    sorting = _sort_candidates(all_series)
    ct = _pick_ct(sorting)
    mr = _pick_mr(sorting)
    for row in sorting.found:
        row["role"] = _role(row["series_uid"], ct, mr)
    return (
        ct,
        mr,
        {"found": sorting.found, "ignored": sorting.ignored, "warnings": sorting.warnings},
    )


def _require_candidates(
    candidates: list[Series],
    problems: list[IngestError],
    ignored: list[dict],
    code: str,
    message: str,
) -> None:
    """Raise the first problem met, or ``code`` naming what was ignored, when no series
    is left to choose from."""
    if candidates:
        return
    if problems:
        raise problems[0]
    raise IngestError(code, message + (f" (ignored: {_ignored_text(ignored)})" if ignored else ""))


def _ignored_text(ignored: list[dict]) -> str:
    return "; ".join(
        f"{r.get('series_description') or r.get('file')!s}: {r['reason']}" for r in ignored[:5]
    )


_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_NATIVE_LE = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")


def _read_dataset(f: FileHeader, label: str) -> pydicom.Dataset:
    """The slice's full data set: ``corrupt_dicom`` when it cannot be read,
    ``no_pixel_data`` when it has none."""
    import pydicom

    try:
        ds = pydicom.dcmread(f.path, force=f.forced)  # the mode ``scan`` read it with
        if f.forced and "TransferSyntaxUID" not in ds.file_meta and _transfer_syntax(ds):
            ds.file_meta.TransferSyntaxUID = _transfer_syntax(ds)  # pixel_array needs it
    except Exception as exc:
        raise IngestError(
            "corrupt_dicom", f"{label}: slice cannot be read ({exc})", file=f.name
        ) from exc
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        raise IngestError(
            "no_pixel_data", f"{label}: a slice has no pixel data", file=f.name, tag=TAG_PIXEL_DATA
        )
    return ds


def _check_uids(s: Series, headers: list[FileHeader], label: str) -> None:
    """The UIDs the exports and the structure-set import rely on: every slice has a
    SOPInstanceUID (``missing_tag``), no two slices at different positions share one
    (``duplicate_sop_instance``), all slices are in one frame of reference
    (``mixed_frame_of_reference``) and a CT has one (``missing_frame_of_reference``)."""
    frames = Counter(f.frame_uid for f in headers if f.frame_uid)
    for f in headers:
        if s.modality == "CT" and not f.frame_uid:
            raise IngestError(
                "missing_frame_of_reference",
                f"{label}: a slice has no FrameOfReferenceUID, so contours drawn on the CT "
                "could not be placed by a planning system",
                file=f.name,
                tag=TAG_FRAME_OF_REFERENCE,
            )
    if len(frames) > 1:
        main = frames.most_common(1)[0][0]
        odd = next(f for f in headers if f.frame_uid and f.frame_uid != main)
        raise IngestError(
            "mixed_frame_of_reference",
            f"{label}: slices in {len(frames)} frames of reference ({odd.frame_uid} where "
            f"the others are in {main})",
            file=odd.name,
            tag=TAG_FRAME_OF_REFERENCE,
        )
    seen: dict[tuple[str, int | None], FileHeader] = {}
    for f in headers:
        if not f.sop_instance:
            raise IngestError(
                "missing_tag", f"{label}: a slice has no SOPInstanceUID", file=f.name,
                tag=TAG_SOP_INSTANCE,
            )  # fmt: skip
        other = seen.setdefault((f.sop_instance, f.frame), f)
        if other is not f and (
            other.ipp is None
            or f.ipp is None
            or float(np.linalg.norm(np.subtract(other.ipp, f.ipp))) >= SAME_POSITION_MM
        ):
            raise IngestError(
                "duplicate_sop_instance",
                f"{label}: {other.name} and {f.name} are different slices (at different "
                f"positions) with one SOPInstanceUID {f.sop_instance}",
                file=f.name,
                tag=TAG_SOP_INSTANCE,
            )


def _check_same_plane_geometry(headers: list[FileHeader], label: str) -> None:
    """Every slice has the first one's matrix size and pixel spacing (to 0.1 % of the
    largest, at least 1e-3 mm), and the series' median orientation (``same_orientation``:
    ``ORIENTATION_TOLERANCE`` per direction component, so scanner rounding noise passes).

    ``mixed_dimensions``, ``mixed_orientation`` or ``mixed_spacing`` otherwise.
    """
    ref_f = headers[0]
    ref_iop = tuple(np.median(np.array([f.iop for f in headers], dtype=float), axis=0))
    ref_ps = np.asarray(ref_f.pixel_spacing)
    for f in headers:
        if (f.rows, f.columns) != (ref_f.rows, ref_f.columns):
            raise IngestError(
                "mixed_dimensions",
                f"{label}: slices of {f.rows}x{f.columns} and {ref_f.rows}x{ref_f.columns} pixels "
                "in one series",
                file=f.name,
                tag=TAG_ROWS_COLS,
            )
        if not same_orientation(f.iop, ref_iop):
            raise IngestError(
                "mixed_orientation",
                f"{label}: slices with different orientations in one series "
                f"({_fmt(f.iop)} vs {_fmt(ref_iop)})",
                file=f.name,
                tag=TAG_IOP,
            )
        if np.max(np.abs(np.asarray(f.pixel_spacing) - ref_ps)) > 1e-3 * max(ref_ps.max(), 1.0):
            raise IngestError(
                "mixed_spacing",
                f"{label}: slices with different pixel spacings in one series "
                f"({_fmt(f.pixel_spacing)} vs {_fmt(ref_f.pixel_spacing)} mm)",
                file=f.name,
                tag=TAG_PIXEL_SPACING,
            )


def _distinct_positions(
    headers: list[FileHeader],
    dist: np.ndarray,
    label: str,
    notes: list[str] | None,
    series_uid: str | None = None,
) -> list[int]:
    """Indices of the slices (sorted along the normal, ``dist`` in mm) to keep.

    Exact copies of a slice (same SOP instance and frame) are dropped with a note;
    different slices at one position raise ``duplicate_slices``.
    """

    def is_copy(a: int, b: int) -> bool:
        fa, fb = headers[a], headers[b]
        if fa.sop_instance and (fa.sop_instance, fa.frame) == (fb.sop_instance, fb.frame):
            if notes is not None:
                notes.append(
                    Note(
                        "duplicate_dropped",
                        f"{label}: duplicate copy of a slice ignored ({fb.name})",
                        files=[fb.name],
                        series=series_uid,
                    )
                )
            return True
        return False

    def clash(a: int, b: int) -> IngestError:
        fa, fb = headers[a], headers[b]
        return IngestError(
            "duplicate_slices",
            f"{label}: two different slices at the same position "
            f"({dist[b]:.2f} mm along the slice normal): {fa.name} and {fb.name}",
            file=fb.name,
            tag=TAG_IPP,
        )

    return drop_repeated_positions(dist, is_copy, clash)


def _note_spacing_header(
    first: FileHeader,
    step: float,
    label: str,
    notes: list[str] | None,
    series_uid: str | None = None,
) -> None:
    """The slice positions decide the spacing; a SpacingBetweenSlices header more than
    1 % off them is reported (some readers and exporters trust the header)."""
    header = first.spacing_between
    if notes is not None and header is not None and abs(header - step) > 0.01 * step:
        notes.append(
            Note(
                "spacing_header_mismatch",
                f"{label}: the SpacingBetweenSlices header says {header:g} mm but the slice "
                f"positions are {step:.3g} mm apart; the positions are used",
                files=[first.name],
                series=series_uid,
            )
        )


def _slice_step(headers: list[FileHeader], dist: np.ndarray, label: str) -> float:
    """The median distance (mm) between consecutive slices, after checking every gap.

    A gap over 1.5 steps raises ``missing_slices`` (with the estimated number
    missing), one more than 10 % off the step ``mixed_spacing``.
    """
    gaps = np.diff(dist)
    step = float(np.median(gaps))
    for i, g in enumerate(gaps):
        if g > 1.5 * step:
            n_missing = int(round(g / step)) - 1
            raise IngestError(
                "missing_slices",
                f"{label}: about {max(n_missing, 1)} slice(s) missing between "
                f"{headers[i].name} and {headers[i + 1].name} (gap of {g:.2f} mm where "
                f"slices are {step:.2f} mm apart)",
                file=headers[i + 1].name,
                tag=TAG_IPP,
            )
        if abs(g - step) > 0.1 * step:
            raise IngestError(
                "mixed_spacing",
                f"{label}: irregular slice spacing ({g:.2f} mm where slices are {step:.2f} mm "
                "apart)",
                file=headers[i + 1].name,
                tag=TAG_IPP,
            )
    return step


def _check_stacked_along_normal(
    s: Series,
    headers: list[FileHeader],
    pos: np.ndarray,
    dist: np.ndarray,
    normal: np.ndarray,
    ref_ps: np.ndarray,
    label: str,
) -> None:
    """Positions must advance along the normal: a sideways drift over half the smallest
    pixel spacing ``ref_ps`` (mm) means gantry tilt or a sheared stack, which a regular
    grid cannot represent (``non_axial_ct`` for a CT, ``mixed_orientation`` for an MR)."""
    drift = pos - pos[0] - np.outer(dist - dist[0], normal)
    if np.max(np.linalg.norm(drift, axis=1)) > 0.5 * float(ref_ps.min()):
        worst = int(np.argmax(np.linalg.norm(drift, axis=1)))
        raise IngestError(
            "non_axial_ct" if s.modality == "CT" else "mixed_orientation",
            f"{label}: slice positions are not stacked along the slice normal (gantry tilt "
            "or a sheared series); reconstruct without tilt",
            file=headers[worst].name,
            tag=TAG_IPP,
        )


def _native_plane(ds: pydicom.Dataset, ts: str, shape: tuple[int, int]) -> np.ndarray | None:
    """The stored values of an uncompressed little-endian 16-bit grey-level slice read
    straight from the PixelData bytes (what ``pixel_array`` gives, several times faster),
    or None for anything else (left to pydicom's decoders)."""
    if ts not in _NATIVE_LE or "PixelData" not in ds or ds.get("BitsAllocated") != 16:
        return None
    if int(ds.get("SamplesPerPixel") or 1) != 1:
        return None
    raw = ds.PixelData
    n = shape[0] * shape[1]
    if not isinstance(raw, bytes) or len(raw) < 2 * n:
        return None
    signed = int(ds.get("PixelRepresentation") or 0) == 1
    bits = int(ds.get("BitsStored") or 16)
    arr = np.frombuffer(raw, dtype="<i2" if signed else "<u2", count=n).reshape(shape)
    if 0 < bits < 16:  # sign-extend or mask the bits above BitsStored, as pydicom does
        arr = (arr << (16 - bits)) >> (16 - bits) if signed else arr & ((1 << bits) - 1)
    return arr


def _file_plane(f: FileHeader, shape: tuple[int, int]) -> np.ndarray | None:
    """The stored values of a slice with a ``native`` layout, read from its file at the
    PixelData offset ``scan`` found (no second parse of the header); None when the
    element there is not as expected (pydicom then reads the file)."""
    if f.native is None or f.frame is not None:
        return None
    offset, dtype, bits = f.native
    n = shape[0] * shape[1]
    try:
        with open(f.path, "rb") as fp:
            start = pixel_data_start(fp, offset, 2 * n)
            if start is None:
                return None
            fp.seek(start)
            arr = np.fromfile(fp, dtype=dtype, count=n)
    except OSError:
        return None
    if arr.size != n:
        return None
    arr = arr.reshape(shape)
    if 0 < bits < 16:  # sign-extend or mask the bits above BitsStored, as pydicom does
        arr = (arr << (16 - bits)) >> (16 - bits) if dtype == "<i2" else arr & ((1 << bits) - 1)
    return arr


def _stored_plane(
    f: FileHeader,
    ds: pydicom.Dataset,
    frames: dict[Path, np.ndarray],
    shape: tuple[int, int],
    label: str,
) -> np.ndarray:
    """The slice's stored pixel values, (rows, columns); ``frames`` caches the pixel
    array of a multi-frame file so it is decoded once. ``undecodable_pixels`` when the
    transfer syntax cannot be decoded or the plane has another shape."""
    ts = _transfer_syntax(ds)
    try:
        arr = _native_plane(ds, ts, shape) if f.frame is None else None
        if arr is None and f.frame is None:
            arr = ds.pixel_array
        elif arr is None:
            if f.path not in frames:
                frames[f.path] = ds.pixel_array
            arr = frames[f.path][f.frame]
    except Exception as exc:
        from pydicom.uid import UID

        ts_name = UID(ts).name if ts else "unknown"
        raise IngestError(
            "undecodable_pixels",
            f"{label}: pixel data cannot be decoded (transfer syntax {ts_name}: {exc})",
            file=f.name,
            tag=TAG_TRANSFER_SYNTAX,
        ) from exc
    if arr.shape != shape:
        raise IngestError(
            "undecodable_pixels",
            f"{label}: decoded pixel array has shape {arr.shape}, expected one "
            f"{shape[0]}x{shape[1]} grey-level plane",
            file=f.name,
            tag=TAG_PIXEL_DATA,
        )
    return arr


# (implicit VR?, little endian?) -> the uncompressed transfer syntax of that encoding
_ENCODING_SYNTAX = {
    (True, True): "1.2.840.10008.1.2",
    (False, True): "1.2.840.10008.1.2.1",
    (False, False): "1.2.840.10008.1.2.2",
}


def _transfer_syntax(ds: pydicom.Dataset) -> str:
    """The TransferSyntaxUID of the file meta; for a data set without one (a file
    without preamble and file meta, read with force=True), the uncompressed syntax of
    the encoding pydicom found it in ('' when unknown)."""
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if ts:
        return ts
    return _ENCODING_SYNTAX.get(getattr(ds, "original_encoding", None), "")  # type: ignore[arg-type]


def _rescale(f: FileHeader, ds: pydicom.Dataset) -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept): per-frame values of enhanced objects first,
    defaults 1 and 0; ``stored * slope + intercept`` is HU for a CT (PS3.3 C.11.1.1.2)."""
    slope = f.slope if f.slope is not None else float(ds.get("RescaleSlope") or 1.0)
    intercept = f.intercept if f.intercept is not None else float(ds.get("RescaleIntercept") or 0.0)
    return slope, intercept


def _lossy(ds: pydicom.Dataset) -> str | None:
    """How the slice's pixels were lossily compressed, in words, or None."""
    ts = _transfer_syntax(ds)
    flag = _str(ds, "LossyImageCompression")
    if ts not in LOSSY_TRANSFER_SYNTAXES and flag != "01":
        return None
    if ts in LOSSY_TRANSFER_SYNTAXES and flag == "00":
        return None  # a JPEG 2000 stream that says it is lossless
    from pydicom.uid import UID

    parts = [f"transfer syntax {LOSSY_TRANSFER_SYNTAXES.get(ts) or UID(ts).name or ts}"]
    if flag == "01":
        ratio = ds.get("LossyImageCompressionRatio")
        method = ds.get("LossyImageCompressionMethod")
        if ratio is not None:
            parts.append(f"ratio {_fmt_multi(ratio)}:1")
        if method is not None:
            parts.append(f"method {_fmt_multi(method)}")
    return ", ".join(parts)


def _fmt_multi(value: object) -> str:
    items = value if isinstance(value, Iterable) and not isinstance(value, str) else [value]
    return "\\".join(str(v) for v in items)


@dataclass
class _Volume:
    """The stored planes of a series as they are read: one integer array while every
    slice shares the first one's dtype and rescale (HU computed once by SimpleITK),
    float32 rescaled values from the first slice that does not."""

    n: int
    shape: tuple[int, int]
    stored: np.ndarray | None = None
    rescale: tuple[float, float] = (1.0, 0.0)
    values: np.ndarray | None = None  # float32, rescaled

    def put(self, k: int, plane: np.ndarray, rescale: tuple[float, float]) -> None:
        """Store plane ``k`` (rows, columns) with its (slope, intercept). A plane in
        the other byte order (a big-endian transfer syntax) is made native first:
        SimpleITK and the arithmetic here take native arrays only."""
        if not plane.dtype.isnative:
            plane = plane.astype(plane.dtype.newbyteorder("="))
        if k == 0 and np.issubdtype(plane.dtype, np.integer) and rescale[0] != 0:
            self.stored = np.empty((self.n, *self.shape), dtype=plane.dtype)
            self.rescale = rescale
        if self.stored is not None and (
            plane.dtype != self.stored.dtype or rescale != self.rescale
        ):
            self._to_float(k)
        if self.stored is not None:
            self.stored[k] = plane
        else:
            out = self.values[k]  # type: ignore[index]
            np.multiply(plane, np.float32(rescale[0]), out=out, casting="unsafe")
            out += np.float32(rescale[1])

    def _to_float(self, done: int) -> None:
        slope, intercept = self.rescale
        self.values = np.empty((self.n, *self.shape), dtype=np.float32)
        if self.stored is not None:
            np.multiply(
                self.stored[:done], np.float32(slope), out=self.values[:done], casting="unsafe"
            )
            self.values[:done] += np.float32(intercept)
        self.stored = None

    def image(self) -> sitk.Image:
        """The float32 rescaled volume as a SimpleITK image (geometry not set)."""
        if self.stored is None and self.values is None:
            self._to_float(0)
        if self.stored is None:
            return sitk.GetImageFromArray(self.values)
        stored = sitk.GetImageFromArray(self.stored)
        self.stored = None  # the array is freed before the float image is made
        slope, intercept = self.rescale
        return sitk.ShiftScale(stored, intercept / slope, slope, sitk.sitkFloat32)


def _hu_stack(s: Series, headers: list[FileHeader]) -> sitk.Image | None:
    """A CT read straight into an int16 HU image (``ml.imaging.hu_volume``) when every
    slice is a native 16-bit plane with one shared integral rescale; None otherwise."""
    first = headers[0]
    if s.modality != "CT" or first.slope_intercept is None:
        return None
    if any(
        f.native is None or f.frame is not None or f.slope_intercept != first.slope_intercept
        for f in headers
    ):
        return None
    slices = [NativeSlice(f.path, *f.native) for f in headers]  # type: ignore[misc]
    return read_hu_int16(slices, (first.rows, first.columns), first.slope_intercept)  # type: ignore[arg-type]


def _decoded_stack(s: Series, headers: list[FileHeader], label: str) -> sitk.Image:
    """float32 volume of the rescaled planes, each file decoded by itself (pydicom's
    decoders unless its native plane can be read at the offset ``scan`` found)."""
    shape = (headers[0].rows, headers[0].columns)
    vol = _Volume(len(headers), shape)  # type: ignore[arg-type]
    frames: dict[Path, np.ndarray] = {}
    read: dict[Path, pydicom.Dataset] = {}
    for k, f in enumerate(headers):
        plane = _file_plane(f, shape)  # type: ignore[arg-type]
        if plane is not None and f.slope_intercept is not None:
            vol.put(k, plane, f.slope_intercept)
            continue
        ds = read.get(f.path) or _read_dataset(f, label)
        if f.frame is not None:
            read[f.path] = ds
        vol.put(k, _stored_plane(f, ds, frames, shape, label), _rescale(f, ds))  # type: ignore[arg-type]
    return vol.image()


def _stack(s: Series, headers: list[FileHeader], label: str, notes: list[str] | None) -> sitk.Image:
    """The volume (slices, rows, columns) of the rescaled planes, in list order.

    A CT whose slices are native 16-bit planes sharing one integral rescale is int16 HU
    (``_hu_stack``: no float copy); everything else is float32, files read one at a
    time (a multi-frame file once). A CT's values are the rescale's HU whatever
    PhotometricInterpretation says (it is about display), while an MR's MONOCHROME1
    planes are inverted with one mapping for the whole series (``max + min - value``,
    over the series) so that brighter is always larger. Lossily compressed pixels are
    noted.
    """
    img = _hu_stack(s, headers)
    if img is None:
        img = _decoded_stack(s, headers, label)
    inverted = [k for k, f in enumerate(headers) if f.photometric == "MONOCHROME1"]
    if inverted and s.modality != "CT":
        arr = sitk.GetArrayFromImage(img)
        top, bottom = float(arr.max()), float(arr.min())
        arr[inverted] = top + bottom - arr[inverted]
        img = sitk.GetImageFromArray(arr)
    if notes is not None:
        lossy: dict[str, list[str]] = {}
        for f in headers:
            if f.lossy:
                lossy.setdefault(f.lossy, []).append(f.name)
        _note_pixels(s, headers, inverted, lossy, label, notes)
    return img


def _note_pixels(
    s: Series,
    headers: list[FileHeader],
    inverted: list[int],
    lossy: dict[str, list[str]],
    label: str,
    notes: list[str],
) -> None:
    if inverted:
        names = [headers[k].name for k in inverted]
        if s.modality == "CT":
            message = (
                f"{label}: {len(inverted)} slice(s) say MONOCHROME1 (display inverted); "
                "Hounsfield units come from the rescale and were not inverted"
            )
        else:
            message = (
                f"{label}: {len(inverted)} MONOCHROME1 slice(s) inverted with one mapping "
                "for the whole series"
            )
        notes.append(Note("monochrome1", message, files=names, series=s.series_uid))
    for how, names in lossy.items():
        notes.append(
            Note(
                "lossy_compression",
                f"{label}: {len(names)} slice(s) lossily compressed ({how}); "
                + (
                    "Hounsfield units may be altered: check before dose planning"
                    if s.modality == "CT"
                    else "intensities may be altered"
                ),
                files=names,
                series=s.series_uid,
            )
        )


def load_series(
    s: Series, notes: list[str] | None = None, slice_files: list[str] | None = None
) -> sitk.Image:
    """Validate the slices of ``s`` and stack them into a volume of rescaled values:
    int16 Hounsfield units for a CT of native 16-bit slices sharing one integral
    rescale that fits int16 (most CTs), float32 otherwise.

    Slices are sorted along the slice normal (``ml.imaging.geometry``); the image has
    origin = the first slice's ImagePositionPatient (mm), spacing (PixelSpacing[1],
    PixelSpacing[0], median slice step) in mm and direction columns (row_dir,
    col_dir, normal) of the first slice. Exact duplicate slices are dropped with a
    ``Note`` in ``notes``, as are lossy compression, MONOCHROME1 and a disagreeing
    SpacingBetweenSlices header. ``slice_files`` (when given) receives the file name of
    each slice of the volume, in its order.
    Raises ``IngestError``: ``corrupt_dicom``, ``no_pixel_data``, ``mixed_dimensions``,
    ``mixed_orientation``, ``mixed_spacing``, ``duplicate_slices``, ``too_few_slices``,
    ``missing_slices``, ``non_axial_ct``, ``undecodable_pixels``, ``missing_tag``,
    ``missing_frame_of_reference``, ``mixed_frame_of_reference``,
    ``duplicate_sop_instance``.
    """
    label = f"{s.modality} series {s.description!r}"
    headers = list(s.files)
    _check_uids(s, headers, label)
    _check_same_plane_geometry(headers, label)
    _row, _col, normal = slice_axes(headers[0].iop)
    pos = np.array([f.ipp for f in headers], dtype=float)
    order, dist = order_along_normal(pos, normal)
    headers = [headers[i] for i in order]
    pos = pos[order]
    keep = _distinct_positions(headers, dist, label, notes, s.series_uid)
    headers = [headers[i] for i in keep]
    pos, dist = pos[keep], dist[keep]
    if len(headers) < MIN_SLICES:
        raise IngestError(
            "too_few_slices",
            f"{label}: only {len(headers)} slice(s); a volume needs at least {MIN_SLICES}",
            file=headers[0].name,
        )
    ref_ps = np.asarray(headers[0].pixel_spacing)
    check_pixel_spacing(ref_ps, label=label, file=headers[0].name)
    step = _slice_step(headers, dist, label)
    check_slice_step(step, label=label, file=headers[0].name)
    _note_spacing_header(headers[0], step, label, notes, s.series_uid)
    _check_stacked_along_normal(s, headers, pos, dist, normal, ref_ps, label)
    row_dir, col_dir, normal = slice_axes(headers[0].iop)
    img = _stack(s, headers, label, notes)
    if slice_files is not None:
        slice_files[:] = [f.name for f in headers]
    img.SetOrigin([float(v) for v in pos[0]])
    img.SetSpacing([float(ref_ps[1]), float(ref_ps[0]), step])
    img.SetDirection([float(v) for v in np.stack([row_dir, col_dir, normal], axis=1).ravel()])
    return img


def _fmt(values: Iterable[float] | None) -> str:
    return "none" if values is None else "\\".join(f"{v:g}" for v in values)


def _set_aside_strays(all_series: list[Series]) -> tuple[list[Series], list[dict]]:
    """The series to choose from, and rows for stray files of other patients.

    The patient is the one whose CT / MR series hold volumes (at least ``MIN_SLICES``
    images); a stray object of another patient (a lone slice, a report, a file someone
    dropped in the folder) is ignored with the reason, while two patients' volumes
    still raise ``multiple_patients`` (``check_single_patient``).
    """
    volumes = [s for s in all_series if s.modality in ("CT", "MR") and len(s.files) >= MIN_SLICES]
    patients = {f.patient_id for s in volumes for f in s.files if f.patient_id}
    if len(patients) != 1:
        return all_series, []
    (patient,) = patients
    kept, ignored = [], []
    for s in all_series:
        others = {f.patient_id for f in s.files if f.patient_id and f.patient_id != patient}
        if others and s not in volumes:
            ignored.append(
                {
                    **s.summary(),
                    "file": s.first.name,
                    "reason": f"another patient's object (PatientID {sorted(others)[0]!r}), not "
                    "part of this study",
                }
            )
            continue
        kept.append(s)
    return kept, ignored


def check_ct_air(ct: sitk.Image, s: Series) -> None:
    """A head CT in Hounsfield units shows air around the head at about -1000 HU: the
    median of its voxels between -1500 and -500 HU (a subsample) must lie in
    ``CT_AIR_RANGE_HU``. ``ct_not_hounsfield`` otherwise (a wrong RescaleIntercept, an
    inverted or rescaled series), since every HU threshold after ingest would be wrong."""
    arr = sitk.GetArrayViewFromImage(ct)[::2, ::4, ::4]
    low = arr[(arr > -1500.0) & (arr < -500.0)]
    air_hu = float(np.median(low)) if low.size else None
    lo, hi = CT_AIR_RANGE_HU
    if air_hu is None or not lo <= air_hu <= hi:
        seen = (
            f"its air is at {air_hu:.0f} HU"
            if air_hu is not None
            else f"nothing lies between -1500 and -500 HU (values {float(arr.min()):.0f} to "
            f"{float(arr.max()):.0f})"
        )
        raise IngestError(
            "ct_not_hounsfield",
            f"CT series {s.description!r}: air should be near -1000 HU but {seen}; check "
            "RescaleSlope / RescaleIntercept and PhotometricInterpretation",
            file=s.first.name,
            tag="RescaleIntercept (0028,1052)",
        )


def _header_notes(chosen: list[Series]) -> list[Note]:
    """Report rows for values read from the headers with a repair or a guess: text
    decoded with a character-set fallback (``charset_fallback``) and a rescale read
    as another value than written (``rescale_repaired``)."""
    out = []
    for s in chosen:
        repaired = [f for f in s.files if f.rescale_note]
        if repaired:
            out.append(
                Note(
                    "rescale_repaired",
                    f"{s.modality} series {s.description!r}: {len(repaired)} slice(s): "
                    f"{repaired[0].rescale_note}; check the values before relying on them",
                    files=[f.name for f in repaired[:20]],
                    series=s.series_uid,
                )
            )
        odd = [f for f in s.files if f.charset_note]
        if odd:
            out.append(
                Note(
                    "charset_fallback",
                    f"{s.modality} series {s.description!r}: {odd[0].charset_note}; the text "
                    f"(patient name: {odd[0].patient_name!r}) was decoded with a fallback",
                    files=[f.name for f in odd[:20]],
                    series=s.series_uid,
                )
            )
    return out


# Refusals a corrupt file in the upload may be the cause of (a slice that cannot be read).
_INCOMPLETE = ("missing_slices", "too_few_slices", "no_ct", "no_mr")


def ingest(source: str | os.PathLike[str]) -> IngestResult:
    """Read a folder tree or a zip; return the validated planning CT and contrast T1 MR.

    ``report``: ``found``, ``ignored`` and ``warnings`` (``choose_series``, ``Note`` lines
    of ``load_series``), and ``rows``: all of it as ``{kind, severity, message, files,
    series}``
    (``report_rows``). A file that cannot be read is ignored, unless the study is then
    incomplete: its ``corrupt_dicom`` is raised instead.
    """
    src = Path(source)
    if not src.exists():
        raise IngestError("not_found", f"the upload {str(src)!r} does not exist", file=str(src))
    with tempfile.TemporaryDirectory(prefix="lesionloop-ingest-") as tmp:
        if src.is_file() and zipfile.is_zipfile(src):
            safe_extract(src, Path(tmp) / "upload")
            root = Path(tmp) / "upload"
            display = root
        else:
            root = src
            display = src if src.is_dir() else src.parent
        all_series, non_dicom = scan(root, display)
        unreadable = [r for r in non_dicom if r.get("code")]
        try:
            chosen_from, strays = _set_aside_strays(all_series)
            check_single_patient(chosen_from)
            ct_s, mr_s, report = choose_series(chosen_from)
            notes: list[str] = []
            ct_files: list[str] = []
            ct = load_series(ct_s, notes, ct_files)
            mr = load_series(mr_s, notes)
        except IngestError as exc:
            if unreadable and exc.code in _INCOMPLETE:
                raise _unreadable_error(unreadable[0]) from exc
            raise
        # Impossible values first (a non-finite rescale is bad_rescale, not a HU problem).
        for img, series, modality in ((ct, ct_s, "CT"), (mr, mr_s, "MR")):
            check_image(
                img,
                modality=modality,
                label=f"{modality} series {series.description!r}",
                file=series.first.name,
            )
        check_ct_slice_air(ct, slice_files=ct_files, label=f"CT series {ct_s.description!r}")
        check_ct_air(ct, ct_s)
        rtstructs = _read_rtstructs(all_series)
    report["ignored"] = non_dicom + strays + report["ignored"]
    report["warnings"] = report.get("warnings", []) + notes + _header_notes([ct_s, mr_s])
    report["rows"] = report_rows(report)
    f_ct = ct_s.first
    dicom = {
        "patient_id": f_ct.patient_id,
        "patient_name": f_ct.patient_name,
        "study_uid": ct_s.study_uid,
        "study_description": f_ct.study_description,
        "ct_series_uid": ct_s.series_uid,
        "mr_series_uid": mr_s.series_uid,
        "study_date": f_ct.study_date,
        "mr_study_uid": mr_s.study_uid,
        "ct_series_description": ct_s.description,
        "mr_series_description": mr_s.description,
        "mr_study_date": mr_s.first.study_date,
    }
    return IngestResult(
        ct=ct,
        mr=mr,
        ct_series=ct_s,
        mr_series=mr_s,
        report=report,
        dicom=dicom,
        rtstructs=rtstructs,
    )


def _read_rtstructs(all_series: list[Series]) -> list[pydicom.Dataset]:
    """The RT Structure Sets of the upload, read whole (an unreadable one is skipped: it
    stays listed among the ignored series)."""
    out = []
    for s in all_series:
        if s.modality != "RTSTRUCT":
            continue
        import pydicom

        for f in s.files:
            try:
                out.append(pydicom.dcmread(f.path, force=f.forced))
            except Exception:  # noqa: BLE001 - reported as an ignored series already
                continue
    return out
