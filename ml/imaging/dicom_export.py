"""What the DICOM exporters (RT Structure Set, Segmentation) share.

- ``prepare_export``: the planning CT's slices in ``sort_slices`` order, the label
  mask checked against them, and the lesion labels present.
- ``copy_study_attributes``: the Patient / General Study attributes a derived object
  copies from the CT it was drawn on (Type 2 ones left empty when the CT lacks them).
- ``dataset_bytes``: a data set as a DICOM Part 10 file in memory.

Grid convention (both exporters): mask slice ``k`` is the ``k``-th CT slice in
``ml.imaging.geometry.sort_slices`` order, mask row ``r`` / column ``c`` are the
slice's pixel row / column.

Pure pydicom / NumPy (no SimpleITK, torch or Django).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from ml.imaging.geometry import sort_slices

MANUFACTURER = "LesionLoop"

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
