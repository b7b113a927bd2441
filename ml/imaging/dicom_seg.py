"""DICOM Segmentation (SEG) export of a lesion label mask drawn on the planning CT.

A BINARY ``highdicom.seg.Segmentation`` with one segment per lesion (segment ``i`` =
the ``i``-th lesion label present, ascending), category "Morphologically abnormal
structure" and type "Neoplasm" (SNOMED CT), algorithm type MANUAL (the contours are
clinician-approved), referencing the CT slices it was drawn on. Frames without any
lesion are omitted. Same grid convention as ``ml.imaging.rtstruct`` (shared helpers in
``ml.imaging.dicom_export``): mask slice ``k`` is the ``k``-th CT slice in
``ml.imaging.geometry.sort_slices`` order.

An empty mask raises ``ValueError`` (a segmentation needs at least one segment).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from ml.imaging.dicom_export import MANUFACTURER, prepare_export


def segment_codes() -> tuple[Any, Any]:
    """(SegmentedPropertyCategory, SegmentedPropertyType) codes for a lesion."""
    from pydicom.sr.codedict import codes

    return codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Neoplasm


def build_segmentation(
    ct_datasets: Sequence[Dataset],
    labels: np.ndarray,
    names: Mapping[int, str] | None = None,
    *,
    series_description: str = "LesionLoop lesions",
    series_number: int = 902,
    software_version: str = "1",
) -> Any:
    """A ``highdicom.seg.Segmentation`` of ``labels`` on the CT ``ct_datasets``.

    ``ct_datasets``: the planning CT's slices (headers suffice), any order.
    ``labels``: integer (z, y, x) mask in ``sort_slices`` order. ``names``: segment
    label per lesion label (default ``Lesion <label>``).
    """
    import highdicom as hd
    from pydicom.uid import generate_uid

    slices, arr, present = prepare_export(
        ct_datasets, labels, "a segmentation needs at least one segment"
    )
    names = dict(names or {})
    dtype = np.uint8 if len(present) < 256 else np.uint16
    lut = np.zeros(int(arr.max()) + 1, dtype=dtype)
    lut[present] = np.arange(1, len(present) + 1, dtype=dtype)
    segments_map = lut[arr.astype(np.int64)]  # label map 0..K, K = len(present)
    category, kind = segment_codes()
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=str(names.get(label) or f"Lesion {label}")[:64],
            segmented_property_category=category,
            segmented_property_type=kind,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for number, label in enumerate(present, start=1)
    ]
    return hd.seg.Segmentation(
        source_images=slices,
        pixel_array=segments_map,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name="LesionLoop",
        software_versions=software_version,
        device_serial_number="1",
        series_description=series_description[:64],
    )
