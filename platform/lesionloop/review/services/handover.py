"""A study's prediction or ground truth becomes its working mask (study locked).

Called inside the transaction that finishes the studies step (ingest, import,
pre-segmentation), so the job ends with the working mask in place or not at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.contrib.auth.models import User
from django.utils import timezone

from lesionloop.registry.models import ModelVersion
from lesionloop.studies import storage
from lesionloop.studies.models import Study
from ml.lesions import label_stats

from ..models import Approval, Lesion, MaskRevision
from ._common import _LESION_FIELDS, _denormalise, _spacing
from .approval import _approve_locked
from .revisions import mask_revision_create


def study_prediction_apply(
    *,
    study: Study,
    model_version: ModelVersion,
    labels_gz: bytes,
    lesions: list[dict[str, Any]],
    priority: float,
) -> MaskRevision:
    """A model's prediction becomes the working mask of an unreviewed study (locked)."""
    revision = mask_revision_create(
        study=study,
        data_gz=labels_gz,
        model_version=model_version,
        reason=f"pre-segmentation by model {model_version.name}",
    )
    study.lesions.all().delete()
    Lesion.objects.bulk_create(
        [
            Lesion(
                study=study,
                model_version=model_version,
                **{k: row[k] for k in _LESION_FIELDS if k in row},
            )
            for row in lesions
        ]
    )
    study.model_version = model_version
    study.priority = priority
    study.status = Study.Status.READY
    study.status_reason = ""
    _denormalise(study)
    study.save()
    return revision


def study_ground_truth_apply(
    *, study: Study, approved_by: User | None = None, training_eligible: bool = True
) -> Approval:
    """Ground truth (prepared ``ground_truth.npy``) becomes the next revision, approved
    (study locked). Lesions of an earlier pre-contour (a study nobody reviewed, whose
    planning system's structure set came later) are replaced."""
    from ml.lesions import label_lesions

    gt = np.load(storage.prepared_dir(study.pk) / "ground_truth.npy")
    labels, _ = label_lesions(gt)
    labels = labels.astype(np.uint16)
    revision = mask_revision_create(
        study=study,
        data_gz=storage.gzip_array(labels, dtype="uint16"),
        author=approved_by,
        reason="ground truth import",
    )
    now = timezone.now()
    stats = label_stats(labels, _spacing(study))
    study.lesions.all().delete()
    Lesion.objects.bulk_create(
        [
            Lesion(
                study=study,
                decision=Lesion.Decision.ACCEPTED,
                contour_source=Lesion.ContourSource.IMPORTED,
                decided_by=approved_by,
                decided_at=now,
                **{k: row[k] for k in _LESION_FIELDS if k in row},
            )
            for row in stats.values()
        ]
    )
    study.status = Study.Status.IN_REVIEW
    _denormalise(study)
    study.save()
    return _approve_locked(
        study=study, user=approved_by, revision=revision, training_eligible=training_eligible
    )
