"""Review effort: active time from lease renewals, and the effort record at approval."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from lesionloop.studies import storage
from lesionloop.studies.models import Study
from ml.metrics.review_effort import review_effort

from ..models import Approval, MaskRevision, ReviewActivity, ReviewEffort
from ._common import _shape


def gap_cap_seconds() -> float:
    return float(settings.LESIONLOOP_REVIEW_GAP_CAP_SECONDS)


def review_activity_beat(
    *, study: Study, client: str, active: bool, continued: bool, now: datetime | None = None
) -> ReviewActivity:
    """One beat of the lease holder (study locked). ``active``: the user did something
    since the client's previous beat; ``continued``: the lease was already held (so the
    gap since the previous beat was spent in review). Adds ``min(gap, cap)`` seconds when
    both hold and the previous beat came from the same client."""
    now = now or timezone.now()
    activity, _ = ReviewActivity.objects.get_or_create(study=study)
    if active and continued and activity.last_beat_at and activity.last_client == client:
        gap = (now - activity.last_beat_at).total_seconds()
        activity.active_seconds += min(max(gap, 0.0), gap_cap_seconds())
    activity.last_beat_at = now
    activity.last_client = client
    activity.save()
    return activity


def _pre_contour(study: Study) -> MaskRevision | None:
    """The revision the model wrote for the study's current pre-segmentation."""
    if study.model_version_id is None:
        return None
    return (
        MaskRevision.objects.filter(
            study=study, model_version_id=study.model_version_id, author__isnull=True
        )
        .order_by("-number")
        .first()
    )


def review_effort_record(
    *, study: Study, approval: Approval, mask: np.ndarray, user: User | None
) -> ReviewEffort | None:
    """Compute and keep the effort of the review that ``approval`` ends (study locked);
    None for a study without a model pre-contour (ground truth imports). The study's
    active review time moves into the record."""
    revision = _pre_contour(study)
    if revision is None:
        return None
    pre = storage.read_gz_array(
        storage.absolute(revision.file), dtype="uint16", shape=_shape(study)
    )
    counts = review_effort(pre, mask, approval.lesion_labels or [])
    activity = ReviewActivity.objects.filter(study=study).first()
    seconds = activity.active_seconds if activity else 0.0
    if activity is not None:
        activity.active_seconds = 0.0
        activity.last_beat_at = None
        activity.save(update_fields=["active_seconds", "last_beat_at"])
    return ReviewEffort.objects.create(
        approval=approval,
        study=study,
        model_version_id=revision.model_version_id,
        reviewer=user,
        active_seconds=round(seconds, 1),
        **{k: counts[k] for k in _COUNTS},
    )


_COUNTS = (
    "model_lesions",
    "accepted_unchanged",
    "edited",
    "rejected",
    "added",
    "voxels_added",
    "voxels_removed",
    "edited_voxels",
)
