"""A planning CT read straight into an int16 Hounsfield-unit volume.

Most CTs are uncompressed little-endian 16-bit slices whose RescaleSlope and
RescaleIntercept are the same integers on every slice (slope 1, intercept -1024):
their Hounsfield units are integers that fit int16 (PS3.3 C.11.1.1.2:
``HU = stored * slope + intercept``). Such a series is read without pydicom's pixel
decoders and without a float copy: each file's PixelData bytes go straight into the
buffer of one preallocated ``sitk.Image`` (int16, 2 bytes a voxel, as SimpleITK's own
``ImageSeriesReader`` gives), and the rescale is applied once, in place, at the end.
Anything else (compressed, big endian, multi-frame, per-slice or fractional rescale,
values beyond int16) is left to the general decoder, which makes float32.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import SimpleITK as sitk

_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"
INT16_MIN, INT16_MAX = -32768, 32767


@dataclass(frozen=True)
class NativeSlice:
    """Where one slice's pixels are: ``offset`` (bytes) of its PixelData element in
    ``path``, stored dtype ``<i2`` or ``<u2`` and BitsStored."""

    path: Path
    offset: int
    dtype: str
    bits: int


def writable_view(img: sitk.Image) -> np.ndarray:
    """A writable NumPy view (z, y, x) of ``img``'s own pixel buffer.

    SimpleITK hands out read-only views only (``GetArrayViewFromImage``, which first
    makes the buffer ``img``'s alone); filling a fresh image through this view avoids
    the second full-volume buffer that ``GetImageFromArray`` (a copy) needs. The view
    must not be used after ``img`` is gone.
    """
    ro = sitk.GetArrayViewFromImage(img)
    raw = (ctypes.c_byte * ro.nbytes).from_address(ro.__array_interface__["data"][0])
    return np.frombuffer(raw, dtype=ro.dtype).reshape(ro.shape)


def pixel_data_start(fp: BinaryIO, offset: int, nbytes: int) -> int | None:
    """Byte offset of the PixelData value whose element starts at ``offset`` in ``fp``,
    when it is a defined-length element of at least ``nbytes`` bytes (explicit VR OW/OB
    or implicit VR, little endian); None otherwise (encapsulated, truncated, moved)."""
    fp.seek(offset)
    head = fp.read(12)
    if head[:4] != _PIXEL_DATA_TAG:
        return None
    if head[4:6] in (b"OW", b"OB"):  # explicit VR: 2 reserved bytes, 4-byte length
        length, start = int.from_bytes(head[8:12], "little"), offset + 12
    else:  # implicit VR: 4-byte length
        length, start = int.from_bytes(head[4:8], "little"), offset + 8
    if length == 0xFFFFFFFF or length < nbytes:
        return None
    return start


def _read_into(s: NativeSlice, out: np.ndarray) -> bool:
    """Read the slice's stored values into the contiguous plane ``out``."""
    try:
        with open(s.path, "rb") as fp:
            start = pixel_data_start(fp, s.offset, out.nbytes)
            if start is None:
                return False
            fp.seek(start)
            return fp.readinto(memoryview(out).cast("B")) == out.nbytes
    except OSError:
        return False


def _stored_range(stored: np.ndarray, bits: int, signed: bool) -> tuple[int, int]:
    """Mask or sign-extend the bits above BitsStored in place (as pydicom does) and
    return the stored minimum and maximum."""
    if 0 < bits < 16:
        if signed:
            np.left_shift(stored, 16 - bits, out=stored)
            np.right_shift(stored, 16 - bits, out=stored)
        else:
            np.bitwise_and(stored, (1 << bits) - 1, out=stored)
    return int(stored.min()), int(stored.max())


def _fits(lo: int, hi: int, slope: int, intercept: int) -> bool:
    """``lo * slope`` and ``hi * slope`` and both plus ``intercept`` are int16."""
    scaled = (lo * slope, hi * slope)
    final = (scaled[0] + intercept, scaled[1] + intercept)
    return all(INT16_MIN <= v <= INT16_MAX for v in (*scaled, *final))


def read_hu_int16(
    slices: list[NativeSlice], shape: tuple[int, int], rescale: tuple[float, float]
) -> sitk.Image | None:
    """The slices (in order) as an int16 image of ``stored * slope + intercept``
    (geometry not set), or None when they cannot be read that way: a rescale that is
    not integral, stored layouts that differ, a PixelData element not where the header
    scan saw it, or values beyond int16. ``shape`` is (Rows, Columns)."""
    slope, intercept = rescale
    if sys.byteorder != "little" or not slices or slope == 0:
        return None
    if not (float(slope).is_integer() and float(intercept).is_integer()):
        return None
    dtype, bits = slices[0].dtype, slices[0].bits
    if any((s.dtype, s.bits) != (dtype, bits) for s in slices):
        return None
    img = sitk.Image([shape[1], shape[0], len(slices)], sitk.sitkInt16)
    vol = writable_view(img)
    for k, s in enumerate(slices):
        if not _read_into(s, vol[k]):
            return None
    signed = dtype == "<i2"
    stored = vol if signed else vol.view(np.uint16)
    lo, hi = _stored_range(stored, bits, signed)
    if hi > INT16_MAX or not _fits(lo, hi, int(slope), int(intercept)):
        return None
    if slope != 1:
        np.multiply(vol, np.int16(slope), out=vol)
    if intercept != 0:
        np.add(vol, np.int16(intercept), out=vol)
    return img
