"""study_import (with ground truth), training_cases, NIfTI export and the commands."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
from django.core.management import CommandError, call_command

from lesionloop.review.services import study_ground_truth_apply
from lesionloop.studies import services, storage
from lesionloop.studies.models import Study
from lesionloop.studies.selectors import training_cases

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(cast: Any, synthetic_case: Path) -> Study:
    return services.study_import(
        source=synthetic_case / "dicom",
        ground_truth=synthetic_case / "ground_truth_ct.nii.gz",
        approved_by=cast.admin,
        ground_truth_apply=study_ground_truth_apply,
    )


def test_import_with_ground_truth_is_an_approved_training_case(imported: Study, cast: Any) -> None:
    study = imported
    assert (
        study.status == "approved" and study.training_eligible and study.approved_by == cast.admin
    )
    revision = study.revisions.get()
    assert revision.number == 1 and revision.author == cast.admin
    assert study.lesions.exclude(decision="accepted").count() == 0
    (case,) = training_cases()
    assert case.study_id == study.pk and case.prepared_dir == storage.prepared_dir(study.pk)
    gt = np.load(case.ground_truth_path)
    prepared_gt = np.load(storage.prepared_dir(study.pk) / "ground_truth.npy")
    assert np.array_equal(gt, (prepared_gt > 0).astype(np.uint8))
    assert {p.name for p in case.training_dir.iterdir()} >= {
        "model_input.npy",
        "study.json",
        "ground_truth.npy",
    }


def test_export_nifti_on_the_ct_grid(api: Any, cast: Any, imported: Study) -> None:
    response = api(cast.clinician).get(f"/api/studies/{imported.pk}/export/nifti")
    assert response.status_code == 200, response.content
    assert "attachment" in response["Content-Disposition"]
    path = Path(storage.study_dir(imported.pk)) / "out.nii.gz"
    path.write_bytes(response.content)
    image = sitk.ReadImage(str(path))
    ct = sitk.ReadImage(str(storage.prepared_dir(imported.pk) / "ct_reference.nii.gz"))
    assert image.GetSize() == ct.GetSize()
    assert sitk.GetArrayFromImage(image).max() >= 1
    assert imported.audit_events.filter(event_type="study_exported", actor=cast.clinician).exists()


def test_export_of_a_study_without_contour_is_409(api: Any, cast: Any) -> None:
    study = Study.objects.create()
    response = api(cast.clinician).get(f"/api/studies/{study.pk}/export/nifti")
    assert response.status_code == 409 and response.json()["code"] == "not_ready"


def test_import_studies_command(
    tmp_path: Path, synthetic_case: Path, cast: Any, django_capture_on_commit_callbacks: Any
) -> None:
    folder = tmp_path / "batch"
    shutil.copytree(synthetic_case, folder / "with_gt")
    shutil.copytree(synthetic_case / "dicom", folder / "no_gt" / "dicom")
    (folder / "junk").mkdir()
    (folder / "junk" / "x.dcm").write_bytes(b"not dicom")
    with (
        django_capture_on_commit_callbacks(execute=False),
        pytest.raises(CommandError, match="1 of 3"),
    ):
        call_command("import_studies", str(folder), "--user", "ada")
    statuses = dict(Study.objects.values_list("description", "status"))
    assert statuses == {"junk": "failed", "no_gt": "awaiting_model", "with_gt": "approved"}
    out = tmp_path / "out"
    out.mkdir()
    approved = Study.objects.get(description="with_gt")
    call_command("export_study", str(approved.pk), "--out", str(out))
    assert len(list(out.glob("*.nii.gz"))) == 1
