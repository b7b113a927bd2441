"""DICOM Segmentation (SEG) export of a lesion label mask drawn on the planning CT.

A BINARY ``highdicom.seg.Segmentation`` with one segment per lesion (segment ``i`` =
the ``i``-th lesion label present, ascending), category "Morphologically abnormal
structure" and type "Neoplasm" (SNOMED CT), referencing the CT slices it was drawn on.
Each segment's algorithm type says how its contour was made (AUTOMATIC: the model's,
accepted; SEMIAUTOMATIC: the model's, edited; MANUAL: drawn), the first two with the
algorithm identification naming the model version. Frames without any lesion are
omitted. The frame geometry (spacing between slices) comes from the CT slices' real
positions along the slice normal, never from a SpacingBetweenSlices header that may
disagree with them. Same grid convention as ``ml.imaging.rtstruct`` (shared helpers in
``ml.imaging.dicom_export``): mask slice ``k`` is the ``k``-th CT slice in
``ml.imaging.geometry.sort_slices`` order.

An empty mask raises ``ValueError`` (a segmentation needs at least one segment).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from ml.imaging.dicom_export import (
    AUTOMATIC,
    MANUAL,
    MANUFACTURER,
    SEMIAUTOMATIC,
    Provenance,
    prepare_export,
    with_exportable_charset,
)
from ml.imaging.geometry import SliceGeometry


def segment_codes() -> tuple[Any, Any]:
    """(SegmentedPropertyCategory, SegmentedPropertyType) codes for a lesion."""
    from pydicom.sr.codedict import codes

    return codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Neoplasm


def slice_spacing_mm(slices: Sequence[Dataset]) -> float:
    """Spacing between slices (mm) from the sorted slices' positions along the slice
    normal (median step); one slice: its SliceThickness, else 1."""
    if len(slices) < 2:
        return float(slices[0].get("SliceThickness") or 1.0)
    geoms = [SliceGeometry.of(ds) for ds in slices]
    along = np.array([g.position @ geoms[0].normal for g in geoms])
    return float(np.median(np.abs(np.diff(along))))


def _true_slice_spacing(seg: Any, slices: Sequence[Dataset]) -> None:
    """Set the shared Pixel Measures' SpacingBetweenSlices from the slice positions:
    highdicom copies the source's header value, which can disagree with the positions
    (readers such as dcmqi then place every frame wrongly)."""
    from pydicom.valuerep import format_number_as_ds

    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    measures.SpacingBetweenSlices = format_number_as_ds(slice_spacing_mm(slices))


def _segment_description(number: int, label: int, name: str, provenance: Provenance) -> Any:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    category, kind = segment_codes()
    algorithm = provenance.algorithm(label)
    values = hd.seg.SegmentAlgorithmTypeValues
    identification = None
    if algorithm in (AUTOMATIC, SEMIAUTOMATIC):
        identification = hd.AlgorithmIdentificationSequence(
            name="LesionLoop ensemble (3D U-Net + DeepMedic)",
            family=codes.DCM.ArtificialIntelligence,
            version=provenance.model_version or "unknown",
        )
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=name[:64],
        segmented_property_category=category,
        segmented_property_type=kind,
        algorithm_type={
            AUTOMATIC: values.AUTOMATIC,
            SEMIAUTOMATIC: values.SEMIAUTOMATIC,
            MANUAL: values.MANUAL,
        }[algorithm],
        algorithm_identification=identification,
    )


def build_segmentation(
    ct_datasets: Sequence[Dataset],
    labels: np.ndarray,
    names: Mapping[int, str] | None = None,
    *,
    series_description: str = "LesionLoop lesions",
    series_number: int = 902,
    software_version: str = "1",
    provenance: Provenance | None = None,
) -> Any:
    """A ``highdicom.seg.Segmentation`` of ``labels`` on the CT ``ct_datasets``.

    ``ct_datasets``: the planning CT's slices (headers suffice), any order.
    ``labels``: integer (z, y, x) mask in ``sort_slices`` order. ``names``: segment
    label per lesion label (default ``Lesion <label>``). ``provenance``: UIDs derived
    from its seed, each segment's algorithm type and the model version (default: new
    UIDs, MANUAL). ``ValueError`` as ``prepare_export``.
    """
    import highdicom as hd

    provenance = provenance or Provenance()
    slices, arr, present = prepare_export(
        ct_datasets, labels, "a segmentation needs at least one segment"
    )
    names = dict(names or {})
    first = with_exportable_charset(slices[0])
    if first is not slices[0]:  # highdicom copies the patient and study from the first
        slices = [first, *[with_exportable_charset(ds) for ds in slices[1:]]]
    dtype = np.uint8 if len(present) < 256 else np.uint16
    lut = np.zeros(int(arr.max()) + 1, dtype=dtype)
    lut[present] = np.arange(1, len(present) + 1, dtype=dtype)
    segments_map = lut[arr.astype(np.int64)]  # label map 0..K, K = len(present)
    descriptions = [
        _segment_description(number, label, str(names.get(label) or f"Lesion {label}"), provenance)
        for number, label in enumerate(present, start=1)
    ]
    seg = hd.seg.Segmentation(
        source_images=slices,
        pixel_array=segments_map,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=provenance.uid("seg", "series"),
        series_number=series_number,
        sop_instance_uid=provenance.uid("seg", "sop"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name="LesionLoop",
        software_versions=software_version,
        device_serial_number="1",
        series_description=series_description[:64],
    )
    _true_slice_spacing(seg, slices)
    return seg
