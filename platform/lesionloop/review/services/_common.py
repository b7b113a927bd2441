"""What every review write shares: the study lock, the grid, the editable checks."""

from __future__ import annotations

from lesionloop.core.exceptions import Conflict, DomainError
from lesionloop.studies.models import Study

from ..models import Lesion

KEPT_DECISIONS = (Lesion.Decision.ACCEPTED, Lesion.Decision.EDITED, Lesion.Decision.ADDED)
EDITABLE_STATUSES = (Study.Status.READY, Study.Status.IN_REVIEW)


def _lock(study_id: int) -> Study:
    """The study row, locked for this transaction (404 ``not_found``)."""
    try:
        return Study.objects.select_for_update().get(pk=study_id)
    except Study.DoesNotExist:
        raise DomainError("No such study.", code="not_found", status_code=404) from None


def _shape(study: Study) -> tuple[int, int, int]:
    """The model grid's (D, H, W)."""
    return tuple(int(v) for v in study.grid["shape_dhw"])  # type: ignore[return-value]


def _spacing(study: Study) -> tuple[float, float, float]:
    """The model grid's spacing in mm, (z, y, x)."""
    return tuple(float(v) for v in study.grid["spacing_mm"])  # type: ignore[return-value]


def _require_editable(study: Study) -> None:
    """409 ``approved`` (contour frozen) or ``not_ready`` unless the study is reviewable."""
    if study.status == Study.Status.APPROVED:
        raise Conflict(
            "The study is approved and its contour frozen; reopen it to change anything.",
            code="approved",
        )
    if study.status not in EDITABLE_STATUSES:
        raise Conflict(
            f"The study is {study.status}; it can be reviewed once it is ready.",
            code="not_ready",
        )


def _denormalise(study: Study) -> None:
    """Refresh the worklist columns from the lesions (call with the study locked)."""
    live = study.lesions.exclude(decision=Lesion.Decision.REJECTED)
    _set_worklist_columns(study, list(live.values_list("volume_mm3", flat=True)))


def _denormalise_from(study: Study, lesions: list[Lesion]) -> None:
    """``_denormalise`` from every lesion row of the study, already read (no query)."""
    live = [les.volume_mm3 for les in lesions if les.decision != Lesion.Decision.REJECTED]
    _set_worklist_columns(study, live)


# The size fields of a lesion row that no voxel is left of (``_size_cleared``).
SIZE_FIELDS = ("volume_vox", "volume_mm3", "longest_axial_diameter_mm", "longest_diameter_mm")


def _size_cleared(lesion: Lesion) -> None:
    """A row's size as its label's voxels are gone (not saved here): 0 voxels / 0 mm3,
    no diameters (null)."""
    lesion.volume_vox, lesion.volume_mm3 = 0, 0.0
    lesion.longest_axial_diameter_mm = lesion.longest_diameter_mm = None


def _set_worklist_columns(study: Study, live_volumes_mm3: list[float]) -> None:
    study.lesion_count = len(live_volumes_mm3)
    study.smallest_lesion_mm3 = min(live_volumes_mm3) if live_volumes_mm3 else None


_LESION_FIELDS = (
    "label",
    "volume_vox",
    "volume_mm3",
    "centroid_vox",
    "centroid_mm",
    "bbox",
    "largest_slice",
    "longest_axial_diameter_mm",
    "longest_diameter_mm",
    "mean_prob",
    "max_prob",
    "disagreement",
)


def _kept_labels(study: Study) -> list[int]:
    """The labels of the accepted / edited / added lesions, ascending."""
    kept = study.lesions.filter(decision__in=KEPT_DECISIONS).order_by("label")
    return list(kept.values_list("label", flat=True))
