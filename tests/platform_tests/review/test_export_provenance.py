"""Exports carry their provenance: one approval exported twice is the same DICOM object
(same SOP Instance UID, same bytes), a new approval is a new object, and the RT Approval,
ROIGenerationAlgorithm and SEG algorithm type say who approved and how each contour
was made."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pydicom
import pytest

from lesionloop.review.models import Lesion
from lesionloop.review.services import study_approve, study_reopen
from lesionloop.studies.models import Study
from tests.platform_tests.review.test_export_dicom import imported, keep_upload

pytestmark = pytest.mark.django_db
__all__ = ["imported"]


def export(api: Any, cast: Any, study: Study, fmt: str) -> pydicom.Dataset:
    response = api(cast.clinician).get(f"/api/studies/{study.pk}/export/{fmt}")
    assert response.status_code == 200, response.content
    return pydicom.dcmread(io.BytesIO(response.content))


@pytest.mark.parametrize("fmt", ["rtstruct", "seg"])
def test_one_approval_is_one_dicom_object(
    api: Any, cast: Any, imported: Study, synthetic_case: Path, fmt: str
) -> None:
    keep_upload(imported, synthetic_case, "folder")
    first, again = export(api, cast, imported, fmt), export(api, cast, imported, fmt)
    assert first.SOPInstanceUID == again.SOPInstanceUID
    assert first.SeriesInstanceUID == again.SeriesInstanceUID
    # A new approval of the same revision is a new object: a planning system never gets
    # two different structure sets under one UID.
    study_reopen(study_id=imported.pk, user=cast.clinician)
    study_approve(study_id=imported.pk, user=cast.clinician, training_eligible=False)
    renewed = export(api, cast, imported, fmt)
    assert renewed.SOPInstanceUID != first.SOPInstanceUID


def test_provenance_attributes(api: Any, cast: Any, imported: Study, synthetic_case: Path) -> None:
    keep_upload(imported, synthetic_case, "zip")
    labels = sorted(
        Lesion.objects.filter(study=imported, decision="accepted").values_list("label", flat=True)
    )
    rt = export(api, cast, imported, "rtstruct")
    assert (rt.ApprovalStatus, rt.ReviewerName) == ("APPROVED", "ada")
    # Imported ground truth was drawn by hand in a planning system: MANUAL.
    assert {str(r.ROIGenerationAlgorithm) for r in rt.StructureSetROISequence} == {"MANUAL"}
    assert [str(r.ROIName) for r in rt.StructureSetROISequence] == [f"Lesion {x}" for x in labels]
    seg = export(api, cast, imported, "seg")
    assert {str(s.SegmentAlgorithmType) for s in seg.SegmentSequence} == {"MANUAL"}
    # In review again: the export says UNAPPROVED and is a new object every time.
    study_reopen(study_id=imported.pk, user=cast.clinician)
    a, b = export(api, cast, imported, "rtstruct"), export(api, cast, imported, "rtstruct")
    assert a.ApprovalStatus == "UNAPPROVED" and a.SOPInstanceUID != b.SOPInstanceUID
