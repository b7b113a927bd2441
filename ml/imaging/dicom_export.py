"""What the DICOM exporters (RT Structure Set, Segmentation) share.

- ``prepare_export``: the planning CT's slices in ``sort_slices`` order, the label
  mask checked against them, and the lesion labels present.
- ``copy_study_attributes``: the Patient / General Study attributes a derived object
  copies from the CT it was drawn on (Type 2 ones left empty when the CT lacks them).
- ``dataset_bytes``: a data set as a DICOM Part 10 file in memory.
- ``Provenance``: who approved, with which model, how each lesion's contour was made,
  and the seed of the exports' UIDs (``derived_uid``: the same approved revision always
  gets the same SOP Instance UID, a new revision a new one).
- ``roi_colour``: a distinct display colour for every ROI number, however many.

Grid convention (both exporters): mask slice ``k`` is the ``k``-th CT slice in
``ml.imaging.geometry.sort_slices`` order, mask row ``r`` / column ``c`` are the
slice's pixel row / column.

Pure pydicom / NumPy (no SimpleITK, torch or Django).
"""

from __future__ import annotations

import colorsys
import datetime as dt
import functools
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from ml.imaging.geometry import sort_slices

MANUFACTURER = "LesionLoop"

# How a lesion's contour was made (RTSTRUCT ROIGenerationAlgorithm, SEG
# SegmentAlgorithmType): the model's as proposed, the model's edited by a clinician,
# drawn by a clinician.
AUTOMATIC, SEMIAUTOMATIC, MANUAL = "AUTOMATIC", "SEMIAUTOMATIC", "MANUAL"

# Distinct display colours for the first ROIs: red, green, blue, yellow, magenta, cyan,
# orange, purple, lime, pink, teal, brown. Later ROIs: hues a golden angle apart.
ROI_COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0),
    (0, 200, 0),
    (0, 96, 255),
    (255, 220, 0),
    (255, 0, 255),
    (0, 220, 220),
    (255, 128, 0),
    (128, 0, 255),
    (160, 255, 0),
    (255, 105, 180),
    (0, 128, 128),
    (150, 75, 0),
)
GOLDEN_ANGLE = 0.3819660112501051  # of a turn: (3 - sqrt 5) / 2


def roi_colour(number: int) -> tuple[int, int, int]:
    """The display colour (RGB 0-255) of ROI ``number`` (1, 2, ...): the fixed palette,
    then hues a golden angle apart at three saturation/value levels, skipping any colour
    already given, so no two ROIs of a structure set share a colour."""
    return _palette(-(-number // _BLOCK))[number - 1]


_BLOCK = 256  # colours are made this many at a time


@functools.cache
def _palette(blocks: int) -> tuple[tuple[int, int, int], ...]:
    """The first ``blocks * _BLOCK`` ROI colours, all distinct (a pure function)."""
    colours, used, k = list(ROI_COLOURS), set(ROI_COLOURS), 0
    while len(colours) < blocks * _BLOCK:
        hue = (k * GOLDEN_ANGLE) % 1.0
        saturation, value = ((1.0, 1.0), (0.6, 1.0), (1.0, 0.7))[k % 3]
        k += 1
        r, g, b = (round(v * 255) for v in colorsys.hsv_to_rgb(hue, saturation, value))
        if (r, g, b) not in used:
            colours.append((r, g, b))
            used.add((r, g, b))
    return tuple(colours)


@dataclass(frozen=True)
class Provenance:
    """Where an exported contour comes from (all optional).

    ``uid_seed``: e.g. ``"<StudyInstanceUID>/<revision>"``; with it the SOP and series
    instance UIDs are derived from it (same seed, same UIDs), without it they are new.
    ``approved``/``reviewer``/``reviewed_at``: the clinician's approval (RT Approval
    module; also the content date and time, so an export of one approval is the same
    object every time). ``model_version``: the model that pre-contoured the study.
    ``algorithms``: lesion label -> ``AUTOMATIC`` | ``SEMIAUTOMATIC`` | ``MANUAL``
    (default ``MANUAL``).
    """

    uid_seed: str = ""
    approved: bool = False
    reviewer: str = ""
    reviewed_at: dt.datetime | None = None
    model_version: str = ""
    algorithms: Mapping[int, str] = field(default_factory=dict)

    def uid(self, *parts: str) -> str:
        return derived_uid(self.uid_seed, *parts)

    def algorithm(self, label: int) -> str:
        return str(self.algorithms.get(int(label), MANUAL))

    def description(self, label: int) -> str:
        """ROIGenerationDescription: how this lesion's contour was made, in words."""
        model = f"LesionLoop model {self.model_version}" if self.model_version else "a model"
        return {
            AUTOMATIC: f"{model}, accepted by a clinician",
            SEMIAUTOMATIC: f"{model}, edited by a clinician",
        }.get(self.algorithm(label), "drawn by a clinician")[:64]


def derived_uid(seed: str, *parts: str) -> str:
    """A UID derived from ``seed`` and ``parts`` (pydicom ``generate_uid`` with them as
    entropy sources: deterministic), or a new random UID when ``seed`` is empty."""
    return generate_uid(entropy_srcs=[seed, *parts]) if seed else generate_uid()


# Study-level attributes copied from the CT (General Study / Patient modules).
STUDY_ATTRIBUTES = (
    "SpecificCharacterSet",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "StudyDescription",
    "AccessionNumber",
    "ReferringPhysicianName",
)
# Type 2 attributes of those modules: present (empty) even when the CT lacks them.
_TYPE2_ATTRIBUTES = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)


# Character sets a Segmentation may carry (highdicom accepts one defined term).
_SINGLE_CHARSETS = {
    "ISO_IR 6", "ISO_IR 100", "ISO_IR 101", "ISO_IR 109", "ISO_IR 110", "ISO_IR 144",
    "ISO_IR 127", "ISO_IR 126", "ISO_IR 138", "ISO_IR 148", "ISO_IR 192", "GB18030", "GBK",
}  # fmt: skip


def with_exportable_charset(ds: Dataset) -> Dataset:
    """``ds`` itself when its SpecificCharacterSet is absent or one defined term the
    exporters can write, else a copy of its header whose text is re-encoded as UTF-8
    (``ISO_IR 192``): ISO 2022 code extensions, an unknown or malformed value (decoded
    by pydicom with its fallback) never make an export fail, and the names survive."""
    value = ds.get("SpecificCharacterSet")
    terms = [str(v).strip() for v in (value if isinstance(value, list | tuple) else [value])]
    if value is None or (len(terms) == 1 and terms[0] in _SINGLE_CHARSETS):
        return ds
    out = Dataset()
    out.update({el.tag: el for el in ds if el.tag != 0x7FE00010})
    if hasattr(ds, "file_meta"):
        out.file_meta = ds.file_meta
    for keyword in STUDY_ATTRIBUTES[1:]:
        if keyword in ds and ds.data_element(keyword).VR in ("PN", "LO", "SH", "ST", "LT"):
            value = ds.data_element(keyword).value
            setattr(out, keyword, str(value) if value is not None else "")
    out.SpecificCharacterSet = "ISO_IR 192"
    return out


def copy_study_attributes(source: Dataset, target: Dataset) -> None:
    """Copy ``STUDY_ATTRIBUTES`` present in ``source`` (a CT slice) onto ``target``, then
    set every Type 2 attribute still missing on ``target`` to empty (DICOM PS3.3
    C.7.1.1 Patient and C.7.2.1 General Study modules)."""
    for keyword in STUDY_ATTRIBUTES:
        if keyword in source:
            setattr(target, keyword, source.data_element(keyword).value)
    for keyword in _TYPE2_ATTRIBUTES:
        if keyword not in target:
            setattr(target, keyword, "")


def _check_mask(sorted_slices: Sequence[Dataset], labels: np.ndarray) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 3:
        raise ValueError(f"the label mask must be 3-D (z, y, x); got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool:
        raise ValueError(f"the label mask must hold integer labels; got {arr.dtype}")
    rows, cols = int(sorted_slices[0].Rows), int(sorted_slices[0].Columns)
    if arr.shape != (len(sorted_slices), rows, cols):
        raise ValueError(
            f"label mask of shape {arr.shape} does not fit {len(sorted_slices)} CT slices of "
            f"{rows}x{cols} pixels"
        )
    return arr


def lesion_labels(labels: np.ndarray) -> list[int]:
    """The nonzero label values present, ascending."""
    return [int(v) for v in np.unique(labels) if v != 0]


def prepare_export(
    ct_datasets: Sequence[Dataset], labels: np.ndarray, what: str
) -> tuple[list[Dataset], np.ndarray, list[int]]:
    """(sorted slices, checked mask, labels present) for a DICOM export of ``labels``.

    ``ct_datasets``: the CT slices in any order (headers suffice); ``labels``: an
    integer or bool (z, y, x) mask of shape (number of slices, Rows, Columns).
    ``ValueError`` (from ``sort_slices`` too) for slices that do not form one series
    or a mask that does not fit or holds no lesion (``what`` names the object for the
    message, e.g. "a structure set needs at least one ROI").
    """
    slices = sort_slices(ct_datasets)
    arr = _check_mask(slices, labels)
    present = lesion_labels(arr)
    if not present:
        raise ValueError(f"the label mask is empty: {what}")
    return slices, arr, present


def dataset_bytes(ds: Dataset) -> bytes:
    """A Part 10 file (preamble, file meta, Explicit VR Little Endian) as bytes."""
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()
