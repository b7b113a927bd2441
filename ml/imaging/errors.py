"""The one exception imaging raises for inputs it refuses.

``IngestError`` is a ``ValueError`` with a machine-readable ``code`` (a short slug
such as ``not_dicom`` or ``missing_slices``), the offending ``file`` and DICOM
``tag`` when known, and a message a clinician can read. The platform shows the
message and keys its behaviour on the code.
"""

from __future__ import annotations

# Every code imaging can raise, with what it means. Tests and the platform key on these.
INGEST_ERROR_CODES: dict[str, str] = {
    "not_dicom": "a file is not DICOM, or the upload holds no DICOM at all",
    "corrupt_dicom": "a file claims to be DICOM but cannot be parsed",
    "no_pixel_data": "a slice of a chosen series has no pixel data",
    "undecodable_pixels": "pixel data cannot be decoded (unsupported or broken compression)",
    "mixed_orientation": "slices of one series have different orientations",
    "mixed_spacing": "slices of one series have different pixel or slice spacings",
    "mixed_dimensions": "slices of one series have different rows/columns",
    "missing_slices": "a gap in slice positions: slices are missing",
    "duplicate_slices": "two different slices at the same position",
    "too_few_slices": "a series has too few slices to be a volume",
    "missing_tag": "a tag needed to place the slice in space is missing or malformed",
    "non_axial_ct": "the CT is not axial",
    "ct_not_hounsfield": "the CT's air is not near -1000 HU: its values are not Hounsfield units",
    "ct_slice_not_hounsfield": "a CT slice's air is not near -1000 HU while the other slices' is",
    "missing_frame_of_reference": "a planning CT slice has no FrameOfReferenceUID",
    "mixed_frame_of_reference": "slices of one series in different frames of reference",
    "duplicate_sop_instance": "two different slices of one series share a SOPInstanceUID",
    "multiple_patients": "the upload holds more than one patient",
    "no_ct": "no CT series in the upload",
    "no_mr": "no MR series in the upload",
    "ambiguous_mr": "several MR series and none is recognisably a contrast T1",
    "unsafe_archive": "a zip entry would be written outside the target folder",
    "archive_too_large": "a zip expands beyond the size or file-count limit",
    "bad_archive": "a zip archive that cannot be read",
    "not_found": "the source path does not exist",
    "bad_ground_truth": "a ground-truth mask that does not fit the CT",
    "rtstruct_frame_mismatch": "a structure set drawn in another frame of reference than the CT",
    "rtstruct_series_mismatch": "a structure set that references another series than the CT",
    "rtstruct_unreadable": "a structure set without ROI or ROI contour sequences",
    "bad_pixel_spacing": "an in-plane pixel spacing that is not finite or outside 0.05-10 mm",
    "bad_slice_spacing": "a distance between slices that is not finite or outside 0.1-20 mm",
    "bad_geometry": "a slice position or orientation that is not finite or absurdly far away",
    "bad_rescale": "voxel values after RescaleSlope/Intercept that are not finite or implausible",
    "rtstruct_bad_pattern": "the ROI name pattern for lesions is not a valid regular expression",
}


class IngestError(ValueError):
    """An upload that imaging refuses, with a reason a clinician can act on."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        file: str | None = None,
        tag: str | None = None,
    ) -> None:
        if code not in INGEST_ERROR_CODES:
            raise ValueError(f"unknown IngestError code {code!r}")
        self.code = code
        self.file = file
        self.tag = tag
        self.message = message
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [self.message]
        if self.file:
            parts.append(f"file: {self.file}")
        if self.tag:
            parts.append(f"tag: {self.tag}")
        return " | ".join(parts)

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "file": self.file, "tag": self.tag}

    def __reduce__(self):  # keep code/file/tag across pickling (worker processes)
        return (_rebuild, (self.code, self.message, self.file, self.tag))


def _rebuild(code: str, message: str, file: str | None, tag: str | None) -> IngestError:
    return IngestError(code, message, file=file, tag=tag)
