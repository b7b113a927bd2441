"""Lesion measurements (longest axial and 3D diameter) for rows saved before they existed.

New rows are measured where their statistics are computed (pre-segmentation, ground
truth import, every mask save: ``ml.lesions.label_stats``). Rows from before migration
``review.0003_lesion_diameters`` have null diameters until ``study_lesions_measure`` (the
``measure_lesions`` command) or their next edit fills them. The migration does not
backfill: it would have to read every study's mask from STORAGE_ROOT (tens of MB each)
inside the schema change, making ``migrate`` slow and dependent on files; a null reads
as "not measured yet" meanwhile, and the command can run while the site is up.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from lesionloop.audit.services import audit_record
from lesionloop.studies.models import Study
from ml.lesions import label_stats

from ..models import Lesion
from ._common import SIZE_FIELDS, _lock, _size_cleared, _spacing
from .revisions import current_mask


def study_lesions_measure(*, study_id: int, only_missing: bool = True) -> int:
    """Measure the study's lesions on its current mask; returns how many rows changed.

    ``only_missing``: only rows whose diameters are null (the backfill). A lesion whose
    label no longer has voxels (erased, so rejected) keeps null; with ``only_missing``
    False, such a row saved with its old size (before mask saves zeroed erased rows) is
    set to 0 voxels / 0 mm3 with null diameters. Measuring changes no contour or
    decision, so approved studies are measured too. 404 ``not_found``.
    """
    with transaction.atomic():
        study = _lock(study_id)
        rows = study.lesions.select_for_update()
        if only_missing:
            rows = rows.filter(longest_diameter_mm__isnull=True)
        todo = {lesion.label: lesion for lesion in rows}
        if not todo or not study.revision_number:
            return 0
        stats = label_stats(current_mask(study), _spacing(study), only=sorted(todo))
        changed = []
        for label, row in stats.items():
            lesion = todo[label]
            lesion.longest_axial_diameter_mm = row["longest_axial_diameter_mm"]
            lesion.longest_diameter_mm = row["longest_diameter_mm"]
            changed.append(lesion)
        erased = [] if only_missing else _zero_erased(todo, stats)
        Lesion.objects.bulk_update(changed, ["longest_axial_diameter_mm", "longest_diameter_mm"])
        Lesion.objects.bulk_update(erased, list(SIZE_FIELDS))
        changed += erased
    if changed:
        audit_record(
            event_type="lesions_measured", study=study, labels=[les.label for les in changed]
        )
    return len(changed)


def _zero_erased(todo: dict[int, Lesion], stats: dict[int, Any]) -> list[Lesion]:
    """Rows with no voxel left on the mask but a size still stored, set to 0 / null."""
    out = []
    for label, lesion in todo.items():
        if label in stats or (lesion.volume_vox == 0 and lesion.longest_diameter_mm is None):
            continue
        _size_cleared(lesion)
        out.append(lesion)
    return out


def studies_lesions_measure(*, only_missing: bool = True) -> tuple[int, int]:
    """``study_lesions_measure`` on every study with a mask; ``(studies, lesions)``."""
    studies = lesions = 0
    for study_id in Study.objects.filter(revision_number__gt=0).values_list("pk", flat=True):
        n = study_lesions_measure(study_id=study_id, only_missing=only_missing)
        studies += 1 if n else 0
        lesions += n
    return studies, lesions
