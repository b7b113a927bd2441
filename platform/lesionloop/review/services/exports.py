"""Exports of the kept lesions on the planning CT: NIfTI, DICOM RTSTRUCT and SEG."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from django.contrib.auth.models import User

from lesionloop.audit.services import audit_record
from lesionloop.core.exceptions import Conflict, DomainError
from lesionloop.studies import storage
from lesionloop.studies.models import Study

from ._common import KEPT_DECISIONS, _kept_labels
from .revisions import current_mask


def _export_study(study_id: int) -> Study:
    """The study to export (404 ``not_found``; 409 ``not_ready`` without a contour)."""
    study = Study.objects.filter(pk=study_id).first()
    if study is None:
        raise DomainError("No such study.", code="not_found", status_code=404)
    if not study.prepared or not study.revision_number:
        raise Conflict("The study has no contour to export yet.", code="not_ready")
    return study


def _kept_on_ct_grid(study: Study, kept: list[int]) -> Any:
    """The kept lesions' label mask on the planning-CT grid (a SimpleITK image)."""
    from ml.imaging.grid import mask_to_ct_grid

    mask = current_mask(study)
    out = np.where(np.isin(mask, np.asarray(kept, dtype=np.uint16)), mask, 0).astype(np.uint16)
    return mask_to_ct_grid(out, storage.prepared_dir(study.pk))


def _export_audit(*, study: Study, user: User, fmt: str, kept: list[int], data: bytes) -> None:
    """Audit an export with the sha256 of what was handed out."""
    audit_record(
        event_type="study_exported",
        actor=user,
        study=study,
        format=fmt,
        revision=study.revision_number,
        lesions=kept,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def study_export_nifti(*, study_id: int, user: User) -> tuple[bytes, str]:
    """Accepted/edited/added lesions as NIfTI labels on the planning-CT grid."""
    import SimpleITK as sitk

    study = _export_study(study_id)
    kept = _kept_labels(study)
    image = _kept_on_ct_grid(study, kept)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "labels.nii.gz"
        sitk.WriteImage(image, str(path), True)
        data = path.read_bytes()
    _export_audit(study=study, user=user, fmt="nifti", kept=kept, data=data)
    name = f"study-{study.pk}-rev{study.revision_number}-labels.nii.gz"
    return data, name


def _upload_source(study: Study) -> Path:
    """The kept upload (archive.zip or the dicom/ tree), or 409 ``upload_missing``."""
    up = storage.upload_dir(study.pk)
    for candidate in (up / "archive.zip", up / "dicom"):
        if candidate.is_file() or (candidate.is_dir() and any(candidate.iterdir())):
            return candidate
    raise Conflict(
        "The study's original DICOM upload is not kept on the server (imported studies "
        "keep none), so a DICOM export cannot reference the planning CT; use the NIfTI "
        "export.",
        code="upload_missing",
    )


def _ct_series_uid(study: Study) -> str:
    """The planning CT's series UID (409 ``upload_unreadable`` when not recorded)."""
    uid = str((study.dicom or {}).get("ct_series_uid") or "")
    if not uid:
        try:
            info = json.loads((storage.prepared_dir(study.pk) / "study.json").read_text())
            uid = str((info.get("dicom") or {}).get("ct_series_uid") or "")
        except (OSError, ValueError):
            uid = ""
    if not uid:
        raise Conflict(
            "The planning CT's series UID is not recorded for this study.",
            code="upload_unreadable",
        )
    return uid


def _reference_ct(study: Study, source: Path) -> list[Any]:
    """The planning CT's slice headers from the upload, sorted as ingest sorts them."""
    from ml.imaging.errors import IngestError
    from ml.imaging.reference_ct import load_reference_ct

    series_uid = _ct_series_uid(study)
    try:
        return load_reference_ct(source, series_uid)
    except IngestError as exc:
        raise Conflict(
            f"The study's DICOM upload cannot be read for export: {exc.message}",
            code="upload_unreadable",
            extra={"reason": exc.code},
        ) from None
    except (ValueError, OSError) as exc:
        raise Conflict(
            f"The study's DICOM upload cannot be read for export: {exc}",
            code="upload_unreadable",
        ) from None


def _provenance(study: Study) -> Any:
    """``ml.imaging.dicom_export.Provenance`` of the study's contour: the approval
    (reviewer, time) when approved, the pre-contouring model version, and per lesion
    how its contour was made (model's: AUTOMATIC, edited: SEMIAUTOMATIC, drawn or
    imported from a planning system: MANUAL). An approved study's UIDs derive from its
    StudyInstanceUID, revision and approval, so exporting one approval twice gives the
    same SOP Instance UID and a new revision or approval a new one; a contour still in
    review gets new UIDs every time."""
    from django.utils import timezone

    from ml.imaging.dicom_export import AUTOMATIC, MANUAL, SEMIAUTOMATIC, Provenance

    from ..models import Approval, Lesion

    how = {
        Lesion.ContourSource.MODEL: AUTOMATIC,
        Lesion.ContourSource.EDITED: SEMIAUTOMATIC,
        Lesion.ContourSource.DRAWN: MANUAL,
        Lesion.ContourSource.IMPORTED: MANUAL,
    }
    algorithms = {
        int(label): how[source]
        for label, source in study.lesions.values_list("label", "contour_source")
    }
    model = study.model_version.name if study.model_version_id else ""
    approval = None
    if study.status == Study.Status.APPROVED:
        approval = (
            Approval.objects.select_related("approved_by")
            .filter(study=study, superseded=False)
            .order_by("-approved_at", "-pk")
            .first()
        )
    if approval is None:
        return Provenance(model_version=model, algorithms=algorithms)
    study_uid = str((study.dicom or {}).get("study_uid") or f"lesionloop-study-{study.pk}")
    return Provenance(
        uid_seed=f"{study_uid}/revision-{approval.revision.number}/approval-{approval.pk}",
        approved=True,
        reviewer=approval.approved_by.get_username() if approval.approved_by else "",
        reviewed_at=timezone.localtime(approval.approved_at).replace(tzinfo=None),
        model_version=model,
        algorithms=algorithms,
    )


def _export_dicom(*, study_id: int, user: User, fmt: str) -> tuple[bytes, str]:
    """The kept lesions as an RTSTRUCT or SEG (``fmt``) on the upload's planning CT."""
    import SimpleITK as sitk

    from ml.imaging.dicom_export import dataset_bytes
    from ml.imaging.geometry import ct_grid

    study = _export_study(study_id)
    source = _upload_source(study)
    kept = _kept_labels(study)
    if not kept:
        raise Conflict("The study has no accepted lesion to export.", code="no_lesions")
    slices = _reference_ct(study, source)
    image = _kept_on_ct_grid(study, kept)
    problem = ct_grid(slices).mismatch(
        origin_xyz=image.GetOrigin(),
        spacing_xyz=image.GetSpacing(),
        direction=image.GetDirection(),
        size_xyz=image.GetSize(),
    )
    if problem is not None:
        raise Conflict(
            f"The planning CT in the upload does not match the study's CT grid ({problem}).",
            code="upload_mismatch",
        )
    labels = sitk.GetArrayFromImage(image)
    provenance = _provenance(study)
    names = {int(label): f"Lesion {int(label)}" for label in kept}
    label = f"LL study {study.pk} r{study.revision_number}"
    description = f"LesionLoop study {study.pk} revision {study.revision_number}"
    if fmt == "rtstruct":
        from ml.imaging.rtstruct import build_rtstruct

        ds = build_rtstruct(
            slices,
            labels,
            names,
            structure_set_label=label,
            series_description=description,
            provenance=provenance,
        )
    else:
        from ml.imaging.dicom_seg import build_segmentation

        ds = build_segmentation(
            slices, labels, names, series_description=description, provenance=provenance
        )
    data = dataset_bytes(ds)
    _export_audit(study=study, user=user, fmt=fmt, kept=kept, data=data)
    return data, f"study-{study.pk}-rev{study.revision_number}-{fmt}.dcm"


def study_export_rtstruct(*, study_id: int, user: User) -> tuple[bytes, str]:
    """Kept lesions as a DICOM RT Structure Set referencing the original planning CT.

    409 ``not_ready`` (no contour), ``upload_missing`` (no kept upload),
    ``upload_unreadable`` / ``upload_mismatch`` (the upload's CT cannot be read or is
    not the study's CT grid), ``no_lesions`` (nothing kept).
    """
    return _export_dicom(study_id=study_id, user=user, fmt="rtstruct")


def study_export_seg(*, study_id: int, user: User) -> tuple[bytes, str]:
    """Kept lesions as a DICOM Segmentation (one segment each) on the original planning CT.

    Same errors as ``study_export_rtstruct``.
    """
    return _export_dicom(study_id=study_id, user=user, fmt="seg")


REPORT_COLUMNS = (
    "study_id",
    "revision",
    "label",
    "decision",
    "contour_source",
    "volume_mm3",
    "longest_axial_diameter_mm",
    "longest_diameter_mm",
    "largest_slice",
    "centroid_z_mm",
    "centroid_y_mm",
    "centroid_x_mm",
    "model_version",
    "decided_by",
)


def _spreadsheet_safe(value: Any) -> Any:
    """Text a spreadsheet would run as a formula (=, +, -, @ first) is quoted."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def _report_diameters(study: Study, lesions: list[Any]) -> dict[int, tuple[Any, Any]]:
    """label -> (longest axial, longest 3D) mm; rows not measured yet (saved before
    measurements existed) are measured here on the current mask, without storing."""
    from ml.lesions import label_stats

    from ._common import _spacing

    out = {les.label: (les.longest_axial_diameter_mm, les.longest_diameter_mm) for les in lesions}
    missing = sorted(label for label, (_, longest) in out.items() if longest is None)
    if missing:
        stats = label_stats(current_mask(study), _spacing(study), only=missing)
        for label, row in stats.items():
            out[label] = (row["longest_axial_diameter_mm"], row["longest_diameter_mm"])
    return out


def study_export_report(*, study_id: int, user: User) -> tuple[bytes, str]:
    """The kept lesions' measurements as CSV (UTF-8, one row per lesion, by volume).

    Columns ``REPORT_COLUMNS``: volume in mm3, diameters in mm (voxel centres,
    ``ml.lesions.diameters``), centroid in mm on the model grid (z, y, x, no origin).
    409 ``not_ready`` (no contour). Audited like the other exports (``format`` "report").
    """
    from ..models import Lesion

    study = _export_study(study_id)
    lesions = list(
        Lesion.objects.filter(study=study, decision__in=KEPT_DECISIONS)
        .select_related("model_version", "decided_by")
        .order_by("volume_mm3", "id")
    )
    diameters = _report_diameters(study, lesions)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(REPORT_COLUMNS)
    for les in lesions:
        centroid = list(les.centroid_mm or []) + [None] * 3
        axial, longest = diameters[les.label]
        row = [
            study.pk,
            study.revision_number,
            les.label,
            les.decision,
            les.contour_source,
            round(les.volume_mm3, 3),
            axial,
            longest,
            les.largest_slice,
            *centroid[:3],
            les.model_version.name if les.model_version else "",
            les.decided_by.get_username() if les.decided_by else "",
        ]
        writer.writerow(["" if v is None else _spreadsheet_safe(v) for v in row])
    data = buffer.getvalue().encode("utf-8")
    _export_audit(
        study=study, user=user, fmt="report", kept=[les.label for les in lesions], data=data
    )
    return data, f"study-{study.pk}-rev{study.revision_number}-lesions.csv"


EXPORTERS: dict[str, Callable[..., tuple[bytes, str]]] = {
    "nifti": study_export_nifti,
    "rtstruct": study_export_rtstruct,
    "seg": study_export_seg,
    "report": study_export_report,
}
