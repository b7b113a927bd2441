"""The header of an ordinary CT/MR slice read without pydicom.

pydicom costs ~0.2 s to import (it loads its pixel-decoder plugins, PIL, pylibjpeg and
urllib at import) and ~1 ms a file to parse a header. Most planning CTs are the simple
case: one frame of uncompressed little-endian 16-bit grey pixels, ASCII text. For that
case only, ``header_fields`` walks the data set's top-level elements up to PixelData
(skipping sequences) and gives exactly the fields ``dicom_io.read_header`` gets from
pydicom: the same stripping, number parsing and defaults, the same PixelData offset.
For anything else, or anything in doubt, it returns None and pydicom reads the file:

- not a Part-10 file (no ``DICM`` after the 128-byte preamble), a file meta group that
  does not parse, a transfer syntax other than Implicit / Explicit VR Little Endian, a
  data set not encoded as its transfer syntax says;
- elements out of order, an explicit VR other than the one the standard gives for a
  tag read here, an element or item that runs past the end of what was read;
- several frames, BitsAllocated not 16, SamplesPerPixel not 1, no Rows / Columns, a
  PixelData element that is not exactly Rows x Columns x 2 bytes;
- SpecificCharacterSet other than none, ``ISO_IR 100`` or ``ISO_IR 192``, or a text
  value that is not printable ASCII (NUL and control bytes included);
- a value pydicom would read as several values, a name with ``=`` component groups,
  a number that is not a plain decimal, LossyImageCompression ``01`` (its report line
  names the transfer syntax, which pydicom words), no SOP Class UID;
- any exception.

GDCM (through SimpleITK) was tried first and dropped: SimpleITK hands its text values
over as C strings, cut at the first NUL (``PAT\\0001`` reads ``PAT``), so its values
need these bytes anyway, and its read costs ~0.7 ms a file where this one, fields
included, costs ~0.2-0.3 ms. ``tests/ml_tests/imaging/test_imaging_fast_header.py``
compares both readers field by field on every file the ingest tests build, on damaged
headers and on pydicom's own test files.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

# Transfer syntax -> explicit VR?
NATIVE_LITTLE_ENDIAN = {"1.2.840.10008.1.2": False, "1.2.840.10008.1.2.1": True}
PLAIN_CHARSETS = frozenset({"", "ISO_IR 100", "ISO_IR 192"})
PIXEL_DATA = 0x7FE00010
# Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2).
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
# Every VR of PS3.5 6.2: any other two bytes where a VR belongs send the file to pydicom.
_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL "
    b"UN UR US UT UV".split()
)
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_HEAD_BYTES = 16384  # read at once: the header of most slices
_MAX_HEAD_BYTES = 1 << 20  # a header longer than this is left to pydicom
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")

# The elements read, with the VR the standard gives them (PS3.6).
VRS = {
    0x00080005: b"CS", 0x00080008: b"CS", 0x00080016: b"UI", 0x00080018: b"UI",
    0x00080020: b"DA", 0x00080060: b"CS", 0x00081030: b"LO", 0x0008103E: b"LO",
    0x00100010: b"PN", 0x00100020: b"LO", 0x00180010: b"LO", 0x00180023: b"CS",
    0x00180088: b"DS", 0x0020000D: b"UI", 0x0020000E: b"UI", 0x00200011: b"IS",
    0x00200032: b"DS", 0x00200037: b"DS", 0x00200052: b"UI", 0x00280002: b"US",
    0x00280004: b"CS", 0x00280008: b"IS", 0x00280010: b"US", 0x00280011: b"US",
    0x00280030: b"DS", 0x00280100: b"US", 0x00280101: b"US", 0x00280103: b"US",
    0x00281052: b"DS", 0x00281053: b"DS", 0x00282110: b"CS",
}  # fmt: skip


class _Decline(Exception):
    """The file is not the simple case: pydicom reads it."""


class _NeedMore(Exception):
    """The walk ran past the bytes read so far."""


def header_fields(path: Path) -> dict[str, object] | None:
    """The ``FileHeader`` fields of the slice at ``path`` (all but ``path`` and
    ``name``) when it is the simple case the module docstring lists; None otherwise
    (then pydicom reads it). Never raises."""
    try:
        return _fields(path)
    except Exception:  # noqa: BLE001 - any doubt: pydicom reads the file
        return None


def _u16(buf: bytes, i: int) -> int:
    return int.from_bytes(buf[i : i + 2], "little")


def _u32(buf: bytes, i: int) -> int:
    return int.from_bytes(buf[i : i + 4], "little")


def _tag(buf: bytes, i: int) -> int:
    return (_u16(buf, i) << 16) | _u16(buf, i + 2)


def _file_meta(head: bytes) -> tuple[dict[int, str], int]:
    """The file meta group (0002,xxxx) of a Part-10 file (element -> UI text) and the
    byte offset where the data set starts (the group is explicit VR little endian)."""
    if len(head) < 132 or head[128:132] != b"DICM":
        raise _Decline("no DICM prefix")
    out: dict[int, str] = {}
    i = 132
    while i + 8 <= len(head) and _u16(head, i) == 0x0002:
        element, vr = _u16(head, i + 2), head[i + 4 : i + 6]
        if vr not in _VRS:
            raise _Decline("file meta VR")
        if vr in _LONG_VRS:
            length, i = _u32(head, i + 8), i + 12
        else:
            length, i = _u16(head, i + 6), i + 8
        if length == _UNDEFINED or i + length > len(head):
            raise _Decline("file meta group does not fit")
        if vr == b"UI":
            out[element] = head[i : i + length].decode("ascii").rstrip("\0 ").strip()
        i += length
    if i + 8 > len(head):
        raise _Decline("file meta group does not end")
    return out, i


def _element(buf: bytes, i: int, explicit: bool) -> tuple[int, bytes, int, int]:
    """``(tag, VR or b"", length, value offset)`` of the element at ``i``."""
    if i + 8 > len(buf):
        raise _NeedMore
    tag = _tag(buf, i)
    if tag >> 16 == 0xFFFE:  # item tags carry no VR in either encoding
        return tag, b"", _u32(buf, i + 4), i + 8
    if not explicit:
        return tag, b"", _u32(buf, i + 4), i + 8
    vr = buf[i + 4 : i + 6]
    if vr not in _VRS:
        raise _Decline("not an explicit VR")
    if vr in _LONG_VRS:
        if i + 12 > len(buf):
            raise _NeedMore
        return tag, vr, _u32(buf, i + 8), i + 12
    return tag, vr, _u16(buf, i + 6), i + 8


def _skip_sequence(buf: bytes, i: int, explicit: bool) -> int:
    """The offset after an undefined-length sequence whose items start at ``i``."""
    while True:
        tag, _vr, length, i = _element(buf, i, explicit)
        if tag == _SEQUENCE_END:
            return i
        if tag != _ITEM:
            raise _Decline("not an item")
        if length != _UNDEFINED:
            i += length
            continue
        while True:  # the item's elements, up to its delimiter
            tag, vr, length, i = _element(buf, i, explicit)
            if tag == _ITEM_END:
                break
            if length == _UNDEFINED:
                if vr not in (b"SQ", b""):
                    raise _Decline("undefined length outside a sequence")
                i = _skip_sequence(buf, i, explicit)
            else:
                i += length


def _walk(buf: bytes, start: int, explicit: bool) -> tuple[dict[int, tuple[bytes, bytes]], int]:
    """The top-level elements of ``VRS`` (tag -> (VR, value bytes)) and the offset of
    the PixelData element, walking from ``start``."""
    if not explicit and buf[start + 4 : start + 6] in _VRS:
        raise _Decline("implicit VR said, explicit VR found")  # pydicom would switch
    out: dict[int, tuple[bytes, bytes]] = {}
    i, last = start, -1
    while True:
        at = i
        tag, vr, length, i = _element(buf, i, explicit)
        if tag <= last or tag >> 16 == 0xFFFE:
            raise _Decline("elements out of order")
        last = tag
        if tag >= 0x7FE00008:  # FloatPixelData and after: pydicom stops at any of them
            if tag != PIXEL_DATA:
                raise _Decline("not PixelData")
            return out, at
        if length == _UNDEFINED:
            if vr not in (b"SQ", b""):
                raise _Decline("undefined length outside a sequence")
            i = _skip_sequence(buf, i, explicit)
            continue
        if i + length > len(buf):
            raise _NeedMore
        if tag in VRS:
            out[tag] = (vr, buf[i : i + length])
        i += length


class _Values:
    """The walked values, converted as pydicom converts them."""

    def __init__(self, found: dict[int, tuple[bytes, bytes]], explicit: bool) -> None:
        for tag, (vr, _value) in found.items():
            if explicit and vr != VRS[tag]:
                raise _Decline(f"{tag:08X}: VR {vr!r}")
        self._found = found

    def raw(self, tag: int) -> str | None:
        """The text value without trailing NULs and spaces (what pydicom keeps of a
        single value); None when absent. Printable ASCII or declined."""
        if tag not in self._found:
            return None
        value = self._found[tag][1].rstrip(b"\0 ").decode("ascii")
        if not value.isprintable():
            raise _Decline(f"{tag:08X}: not printable")
        return value

    def text(self, tag: int) -> str:
        """``str(value).strip()`` of one text value; '' when absent. A value with several
        parts is declined (pydicom's ``str`` of a list is another text)."""
        value = self.raw(tag)
        if value is None:
            return ""
        if "\\" in value:
            raise _Decline(f"{tag:08X}: several values")
        return value.strip()

    def name(self, tag: int) -> str:
        value = self.text(tag)
        if "=" in value:
            raise _Decline(f"{tag:08X}: component groups")
        return value

    def multi_text(self, tag: int) -> tuple[str, ...]:
        """``tuple(str(v).upper() for v in (ds.get(kw) or []))`` of a CS value: split
        after the whole value is right-stripped (pydicom's ``convert_string``; its parts
        keep their spaces), a single value iterated by character (as pydicom's str is)."""
        value = self.raw(tag)
        if value is None:
            return ()
        parts = value.split("\\")
        items = parts if len(parts) > 1 else list(parts[0])
        return tuple(v.upper() for v in items)

    def numbers(self, tag: int, pattern: re.Pattern[str] = _DECIMAL) -> tuple[float, ...] | None:
        """The values of a DS / IS element; None when absent or empty."""
        value = self.raw(tag)
        if value is None or not value.strip(" "):
            return None
        parts = [p.strip(" ") for p in value.split("\\")]
        if not all(pattern.fullmatch(p) for p in parts):
            raise _Decline(f"{tag:08X}: not a plain number")
        return tuple(float(p) for p in parts)

    def num_list(self, tag: int, n: int) -> tuple[float, ...] | None:
        """``dicom_io._num_list``: ``n`` finite values, else None."""
        values = self.numbers(tag)
        if values is None or len(values) != n or not all(np.isfinite(values)):
            return None
        return values

    def one(self, tag: int, pattern: re.Pattern[str]) -> float | None:
        values = self.numbers(tag, pattern)
        if values is not None and len(values) != 1:
            raise _Decline(f"{tag:08X}: several values")
        return values[0] if values else None

    def unsigned(self, tag: int) -> int | None:
        """A US value, None when absent."""
        if tag not in self._found:
            return None
        value = self._found[tag][1]
        if len(value) != 2:
            raise _Decline(f"{tag:08X}: not one US value")
        return int.from_bytes(value, "little")


def _read(path: Path) -> tuple[bytes, int, dict[int, str], bool, int, _Values]:
    """``(bytes read, file size, file meta, explicit VR?, PixelData offset, values)``."""
    size = path.stat().st_size
    with open(path, "rb") as fp:
        buf = fp.read(min(size, _HEAD_BYTES))
        meta, start = _file_meta(buf)
        explicit = NATIVE_LITTLE_ENDIAN.get(meta.get(0x0010, ""))
        if explicit is None:
            raise _Decline("transfer syntax")
        try:
            found, offset = _walk(buf, start, explicit)
        except _NeedMore:
            if len(buf) >= min(size, _MAX_HEAD_BYTES):
                raise _Decline("header runs past what may be read") from None
            buf += fp.read(min(size, _MAX_HEAD_BYTES) - len(buf))
            found, offset = _walk(buf, start, explicit)
    return buf, size, meta, explicit, offset, _Values(found, explicit)


def _pixel_length(buf: bytes, offset: int, explicit: bool) -> int:
    """The PixelData element's value length (OW or OB when explicit)."""
    if offset + 12 > len(buf):
        raise _Decline("PixelData header not read")
    _tag_, vr, length, _start = _element(buf, offset, explicit)
    if explicit and vr not in (b"OW", b"OB"):
        raise _Decline("PixelData VR")
    return length


def _fields(path: Path) -> dict[str, object] | None:
    buf, size, meta, explicit, offset, v = _read(path)
    rows, cols = v.unsigned(0x00280010), v.unsigned(0x00280011)
    if not rows or not cols or _pixel_length(buf, offset, explicit) != rows * cols * 2:
        return None
    if v.unsigned(0x00280100) != 16 or v.unsigned(0x00280002) not in (None, 0, 1):
        return None
    if v.text(0x00080005) not in PLAIN_CHARSETS or v.text(0x00282110) == "01":
        return None
    if v.one(0x00280008, _INTEGER) not in (None, 0, 1):
        return None
    sop_class = v.text(0x00080016) or meta.get(0x0002, "")
    if not sop_class:
        return None
    signed = (v.unsigned(0x00280103) or 0) == 1
    native = (offset, "<i2" if signed else "<u2", v.unsigned(0x00280101) or 16)
    return {**_identity(v, sop_class), **_geometry(v), "rows": rows, "columns": cols,
            "native": native}  # fmt: skip


def _identity(v: _Values, sop_class: str) -> dict[str, object]:
    """The grouping and selection fields (``dicom_io._headers_of``)."""
    series_number = v.one(0x00200011, _INTEGER)
    return {
        "sop_class": sop_class,
        "sop_instance": v.text(0x00080018),
        "modality": v.text(0x00080060).upper(),
        "study_uid": v.text(0x0020000D),
        "series_uid": v.text(0x0020000E),
        "patient_id": v.text(0x00100020),
        "patient_name": v.name(0x00100010),
        "series_description": v.text(0x0008103E),
        "study_description": v.text(0x00081030),
        "study_date": v.text(0x00080020),
        "image_type": v.multi_text(0x00080008),
        "n_frames": 1,
        "contrast_agent": v.text(0x00180010),
        "acquisition_type": v.text(0x00180023).upper(),
        "series_number": int(series_number) if series_number is not None else None,
        "frame_uid": v.text(0x00200052),
        "photometric": v.text(0x00280004).upper(),
        "lossy": None,
    }


def rescale_repair_note(slope: tuple[float, ...] | float | None) -> str:
    """The report text for a RescaleSlope that is read as another value ('' when it is
    read as written): a slope of 0 (every voxel would be the intercept) is read as 1.
    ``slope``: the element's value(s), None when absent."""
    values = slope if isinstance(slope, tuple) else (slope,)
    if len(values) == 1 and values[0] == 0:
        return "RescaleSlope is 0 (every voxel would be the intercept); read as 1"
    return ""


def _geometry(v: _Values) -> dict[str, object]:
    """Position, spacing and rescale (``dicom_io._headers_of``: a zero slope reads as 1,
    as pydicom's ``float(ds.get("RescaleSlope") or 1.0)`` does, and is noted:
    ``rescale_repair_note``)."""
    between = v.num_list(0x00180088, 1)
    slope = v.one(0x00281053, _DECIMAL)
    intercept = v.one(0x00281052, _DECIMAL)
    return {
        "rescale_note": rescale_repair_note(v.num_list(0x00281053, 1)),
        "iop": v.num_list(0x00200037, 6),
        "ipp": v.num_list(0x00200032, 3),
        "pixel_spacing": v.num_list(0x00280030, 2),
        "spacing_between": between[0] if between and between[0] > 0 else None,
        "slope_intercept": (float(slope or 1.0), float(intercept or 0.0)),
    }
