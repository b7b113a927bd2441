"""``import_archive``: an SRS archive folder (one study per sub-folder or zip, each with
its planning system's structure set) becomes approved training cases; what cannot be
imported is reported by code and the rest goes on."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from django.core.management import call_command
from scipy import ndimage

from lesionloop.studies.models import Study
from ml.imaging.dicom_io import ingest
from tests.ml_tests.imaging.tps import tps_rtstruct

pytestmark = pytest.mark.django_db


def _study_with_rtstruct(case: Path, out: Path, *, frame: str | None = None) -> tuple[int, Path]:
    """A copy of the synthetic study's DICOM with a TPS-style structure set: one GTV ROI
    per lesion, a PTV and the brain. Returns (number of lesions, folder)."""
    shutil.copytree(case / "dicom", out)
    ing = ingest(out)
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(case / "ground_truth_ct.nii.gz"))) > 0
    labels, n = ndimage.label(truth, structure=np.ones((3, 3, 3)))
    first = pydicom.dcmread(sorted((out / "ct").glob("*.dcm"))[0], stop_before_pixels=True)
    rois = {f"GTV_met{i}": labels == i for i in range(1, n + 1)}
    rois["PTV_all"] = ndimage.binary_dilation(truth, iterations=2)
    brain = np.zeros_like(truth)
    brain[2:-2, 4:-4, 4:-4] = True
    rois["Brain"] = brain
    tps_rtstruct(first, ing.ct, rois, frame=frame).save_as(
        out / "rtstruct.dcm", enforce_file_format=True
    )
    return n, out


def _zip(folder: Path) -> Path:
    target = folder.with_suffix(".zip")
    with zipfile.ZipFile(target, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
    shutil.rmtree(folder)
    return target


def test_archive_folder_becomes_training_cases(tmp_path: Path, synthetic_case: Path) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    n, _ = _study_with_rtstruct(synthetic_case, archive / "a-treated")
    _study_with_rtstruct(synthetic_case, archive / "b-other-ct", frame="1.2.3.4.5")
    _zip(archive / "b-other-ct")
    shutil.copytree(synthetic_case / "dicom", archive / "c-no-structures")
    out = io.StringIO()
    call_command("import_archive", str(archive), stdout=out)
    text = out.getvalue()
    lines = text.strip().splitlines()
    assert lines[0].startswith("[1/3] a-treated: study ") and "approved with" in lines[0]
    assert "ignored PTV_all, Brain" in lines[0] and "left)" in lines[0]
    assert "refused (rtstruct_frame_mismatch)" in lines[1]
    assert "imported for review" in lines[2]
    assert lines[-1].endswith(
        "3 studies in "
        + lines[-1].split(" in ")[1].split(":")[0]
        + ": 1 approved training case(s), 1 for review, 1 refused (rtstruct_frame_mismatch: 1)"
    )
    treated = Study.objects.get(description="a-treated")
    assert treated.status == "approved" and treated.training_eligible
    assert treated.lesions.count() == n
    assert treated.report["ground_truth"]["included"] == [f"GTV_met{i}" for i in range(1, n + 1)]
    assert Study.objects.get(description="b-other-ct.zip").status == "failed"
    assert Study.objects.get(description="c-no-structures").status != "approved"


def test_a_folder_without_studies_is_refused(tmp_path: Path) -> None:
    from django.core.management.base import CommandError

    (tmp_path / "empty").mkdir()
    with pytest.raises(CommandError, match="holds no study"):
        call_command("import_archive", str(tmp_path / "empty"))


def test_an_uploaded_zip_with_its_structure_set_is_a_training_case(
    api: Any, cast: Any, tmp_path: Path, synthetic_case: Path
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.platform_tests.studies.test_upload import run_ingest, upload

    n, folder = _study_with_rtstruct(synthetic_case, tmp_path / "treated")
    archive = _zip(folder)
    response = upload(
        api,
        cast.clinician,
        [SimpleUploadedFile("treated.zip", archive.read_bytes(), content_type="application/zip")],
    )
    assert response.status_code == 202, response.content
    study = run_ingest(response.json()["id"])
    assert study.status == "approved" and study.lesions.count() == n
    ignored = [row["roi"] for row in study.report["ground_truth"]["ignored"]]
    assert ignored == ["PTV_all", "Brain"]
    detail = api(cast.clinician).get(f"/api/studies/{study.pk}/").json()
    assert detail["report"]["ground_truth"]["included"][0] == "GTV_met1"
