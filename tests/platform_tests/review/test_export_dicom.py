"""DICOM exports (RTSTRUCT, SEG) of the kept lesions, referencing the uploaded planning CT.

Mirrors the NIfTI export tests (tests/platform_tests/studies/test_import_export.py):
a real synthetic study imported with its ground truth, whose DICOM is then placed where
an upload keeps it (``storage.upload_dir``), as a folder tree or as the uploaded zip.
"""

from __future__ import annotations

import hashlib
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

from lesionloop.audit.models import AuditEvent
from lesionloop.review.models import Lesion
from lesionloop.review.services import study_ground_truth_apply
from lesionloop.studies import services, storage
from lesionloop.studies.models import Study
from tests.ml_tests.imaging.contour_checks import assert_half_a_voxel_from_centres, contour_points
from tests.platform_tests.studies.helpers import make_study

pytestmark = pytest.mark.django_db

FORMATS = ["rtstruct", "seg"]


def keep_upload(study: Study, synthetic_case: Path, layout: str) -> None:
    """Put the study's DICOM where an upload keeps it: ``dicom/...`` or ``archive.zip``."""
    up = storage.upload_dir(study.pk)
    shutil.rmtree(up, ignore_errors=True)  # replace the copy the import kept
    if layout == "folder":
        shutil.copytree(synthetic_case / "dicom", up / "dicom" / "0001" / "series")
        return
    up.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(up / "archive.zip", "w") as zf:
        for p in sorted((synthetic_case / "dicom").rglob("*.dcm")):
            zf.write(p, p.relative_to(synthetic_case).as_posix())


@pytest.fixture
def imported(cast: Any, synthetic_case: Path) -> Study:
    """Approved from its ground truth: every lesion accepted; the smallest is then rejected."""
    study = services.study_import(
        source=synthetic_case / "dicom",
        ground_truth=synthetic_case / "ground_truth_ct.nii.gz",
        approved_by=cast.admin,
        ground_truth_apply=study_ground_truth_apply,
    )
    labels = list(study.lesions.order_by("volume_mm3").values_list("label", flat=True))
    assert len(labels) >= 2, "the synthetic case needs two lesions"
    Lesion.objects.filter(study=study, label=labels[0]).update(decision="rejected")
    return study


def reference_ct(study: Study, synthetic_case: Path) -> list[Any]:
    from ml.imaging.reference_ct import load_reference_ct

    return load_reference_ct(synthetic_case / "dicom", study.dicom["ct_series_uid"])


def nifti_labels(api: Any, cast: Any, study: Study) -> tuple[sitk.Image, np.ndarray]:
    response = api(cast.clinician).get(f"/api/studies/{study.pk}/export/nifti")
    assert response.status_code == 200
    path = storage.study_dir(study.pk) / "labels.nii.gz"
    path.write_bytes(response.content)
    image = sitk.ReadImage(str(path))
    return image, sitk.GetArrayFromImage(image)


# (format, upload layout)
EXPORTS = [("rtstruct", "folder"), ("seg", "zip")]


@pytest.mark.parametrize(("fmt", "layout"), EXPORTS, ids=[f"{f}-{u}" for f, u in EXPORTS])
def test_dicom_export_has_the_kept_lesions_on_the_planning_ct(
    api: Any, cast: Any, imported: Study, synthetic_case: Path, fmt: str, layout: str
) -> None:
    import highdicom as hd

    from ml.imaging.rtstruct import read_rtstruct_masks

    keep_upload(imported, synthetic_case, layout)
    kept = sorted(imported.lesions.exclude(decision="rejected").values_list("label", flat=True))
    (rejected,) = imported.lesions.filter(decision="rejected").values_list("label", flat=True)
    response = api(cast.clinician).get(f"/api/studies/{imported.pk}/export/{fmt}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/dicom"
    assert response["Content-Disposition"] == (
        f'attachment; filename="study-{imported.pk}-rev{imported.revision_number}-{fmt}.dcm"'
    )
    ct = reference_ct(imported, synthetic_case)
    image, on_ct = nifti_labels(api, cast, imported)
    ds = pydicom.dcmread(io.BytesIO(response.content))
    for keyword in ("PatientID", "StudyInstanceUID", "FrameOfReferenceUID"):
        assert ds.get(keyword) == ct[0].get(keyword), keyword
    names = [f"Lesion {label}" for label in kept]
    if fmt == "rtstruct":
        assert ds.Modality == "RTSTRUCT"
        assert [r.ROIName for r in ds.StructureSetROISequence] == names
        masks = read_rtstruct_masks(ds, ct)
        assert f"Lesion {rejected}" not in masks
        for label in kept:
            assert np.array_equal(masks[f"Lesion {label}"], on_ct == label), label
        # Lesion voxel -> mm through the CT grid vs the contours' mm: within half a voxel.
        for roi in ds.ROIContourSequence:
            label = kept[int(roi.ReferencedROINumber) - 1]
            for item in roi.ContourSequence:
                pts = contour_points(item)
                k = int(round(image.TransformPhysicalPointToContinuousIndex(pts[0])[2]))
                assert_half_a_voxel_from_centres(pts, image, on_ct[k] == label, k)
    else:
        seg = hd.seg.Segmentation.from_dataset(ds)
        assert seg.number_of_segments == len(kept)
        segment_labels = [
            seg.get_segment_description(n).segment_label for n in range(1, 1 + len(kept))
        ]
        assert segment_labels == names
        pixels = seg.get_pixels_by_source_instance(
            [s.SOPInstanceUID for s in ct], assert_missing_frames_are_empty=True
        )
        for i, label in enumerate(kept):
            assert int(pixels[..., i].sum()) == int((on_ct == label).sum()), label
            assert np.array_equal(pixels[..., i] > 0, on_ct == label), label
    events = AuditEvent.objects.filter(
        study=imported, event_type="study_exported", actor=cast.clinician
    )
    payloads = {e.payload["format"]: e.payload for e in events}
    assert payloads[fmt]["lesions"] == kept
    assert payloads[fmt]["revision"] == imported.revision_number
    assert payloads[fmt]["sha256"] == hashlib.sha256(response.content).hexdigest()


def test_export_command_writes_rtstruct(
    imported: Study, synthetic_case: Path, tmp_path: Path
) -> None:
    keep_upload(imported, synthetic_case, "folder")
    call_command("export_study", str(imported.pk), "--format", "rtstruct", "--out", str(tmp_path))
    (path,) = tmp_path.glob("*-rtstruct.dcm")
    assert pydicom.dcmread(path).Modality == "RTSTRUCT"


def test_import_keeps_the_dicom_for_the_export(api: Any, cast: Any, imported: Study) -> None:
    # study_import keeps its source where an upload keeps it, so imported studies
    # (demo data, import_studies) export as DICOM too.
    assert any(storage.upload_dir(imported.pk).joinpath("dicom").rglob("*.dcm"))
    for fmt in FORMATS:
        response = api(cast.clinician).get(f"/api/studies/{imported.pk}/export/{fmt}")
        assert response.status_code == 200, (fmt, response.content[:200])


def test_study_without_upload_is_409_upload_missing(api: Any, cast: Any, imported: Study) -> None:
    shutil.rmtree(storage.upload_dir(imported.pk))
    for fmt in FORMATS:
        response = api(cast.clinician).get(f"/api/studies/{imported.pk}/export/{fmt}")
        assert response.status_code == 409 and response.json()["code"] == "upload_missing", fmt
        assert "NIfTI" in response.json()["detail"]


def _junk_upload(study: Study) -> None:
    shutil.rmtree(storage.upload_dir(study.pk), ignore_errors=True)
    (storage.upload_dir(study.pk) / "dicom").mkdir(parents=True)
    (storage.upload_dir(study.pk) / "dicom" / "00000_x.dcm").write_bytes(b"not dicom")


def _bad_zip(study: Study) -> None:
    shutil.rmtree(storage.upload_dir(study.pk), ignore_errors=True)
    storage.upload_dir(study.pk).mkdir(parents=True)
    (storage.upload_dir(study.pk) / "archive.zip").write_bytes(b"PK\x03\x04 truncated")


def _reject_all(study: Study) -> None:
    _junk_upload(study)
    study.lesions.update(decision="rejected")


# (case, how the study is broken, expected status, code, reason)
FAILURES = [
    ("not ready", "not-ready", 409, "not_ready", None),
    ("no such study", "missing", 404, "not_found", None),
    ("no upload kept", None, 409, "upload_missing", None),
    ("upload is not DICOM", _junk_upload, 409, "upload_unreadable", "not_dicom"),
    ("upload zip is broken", _bad_zip, 409, "upload_unreadable", "not_dicom"),
    ("nothing kept", _reject_all, 409, "no_lesions", None),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("case", "setup", "status", "code", "reason"), FAILURES, ids=[f[0] for f in FAILURES]
)
def test_refusals_are_4xx_with_a_code(
    api: Any, cast: Any, fmt: str, case: str, setup: Any, status: int, code: str, reason: Any
) -> None:
    if setup == "not-ready":
        study_id = Study.objects.create().pk
    elif setup == "missing":
        study_id = 999_999
    else:
        study = make_study()  # fake prepared dir: no CT, so it must be refused before the CT
        Study.objects.filter(pk=study.pk).update(dicom={"ct_series_uid": "1.2.3.4"})
        study.lesions.update(decision="accepted")
        if setup is not None:
            setup(study)
        study_id = study.pk
    response = api(cast.clinician).get(f"/api/studies/{study_id}/export/{fmt}")
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code and body["detail"]
    if reason is not None:
        assert body["reason"] == reason
    assert not AuditEvent.objects.filter(event_type="study_exported").exists()


ROLES = ["clinician", "admin", "auditor", "nobody", None]


@pytest.mark.parametrize("role", ROLES, ids=[str(r) for r in ROLES])
def test_permissions_are_those_of_the_nifti_export(api: Any, cast: Any, role: str | None) -> None:
    """A not-ready study: a role that may export gets past the gate to the 409."""
    study = Study.objects.create()
    client = api(getattr(cast, role) if role else None)
    statuses = {
        fmt: client.get(f"/api/studies/{study.pk}/export/{fmt}").status_code
        for fmt in ("nifti", *FORMATS)
    }
    assert len(set(statuses.values())) == 1, statuses
    expected = {"clinician": 409, "admin": 409, "auditor": 409, "nobody": 403}
    if role is None:
        assert statuses["nifti"] in (401, 403)
    else:
        assert statuses["nifti"] == expected[role]
