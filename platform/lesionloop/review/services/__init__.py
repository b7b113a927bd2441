"""Writes for review: leases, lesion decisions, mask revisions, approval, export.

Every write locks the study row first (``select_for_update``), then touches lesions
and revisions, so concurrent editors serialise on one row in a fixed order.

One module per sub-domain; the public names are re-exported here, so callers keep
importing ``lesionloop.review.services``:

- ``leases``: ``lease_take``, ``lease_release`` (and the lease checks every write makes);
- ``decisions``: ``lesion_decide``;
- ``revisions``: ``mask_revision_create``, ``current_mask`` (with the sparse working copy);
- ``masks``: ``mask_save`` (decode, diff, the lesions follow the edit);
- ``approval``: ``study_approve``, ``study_reopen`` (with the training snapshot);
- ``handover``: ``study_prediction_apply``, ``study_ground_truth_apply`` (a prediction or
  ground truth becomes the working mask);
- ``exports``: ``study_export_nifti``, ``study_export_rtstruct``, ``study_export_seg``,
  ``study_export_report`` (the lesion measurements as CSV), ``EXPORTERS``;
- ``measurements``: ``study_lesions_measure`` (diameters of rows from before they existed);
- ``proposals``: ``lesion_propose`` (click to add: a lesion grown from a click, not stored);
- ``rulers``: ``ruler_save``, ``rulers_delete`` (the viewer's rulers, per study and user);
- ``_common``: the study lock, the grid, the editable checks.
"""

from __future__ import annotations

from ._common import EDITABLE_STATUSES, KEPT_DECISIONS
from .approval import study_approve, study_reopen
from .decisions import lesion_decide
from .exports import (
    EXPORTERS,
    study_export_nifti,
    study_export_report,
    study_export_rtstruct,
    study_export_seg,
)
from .handover import study_ground_truth_apply, study_prediction_apply
from .leases import lease_release, lease_take
from .masks import mask_save
from .measurements import studies_lesions_measure, study_lesions_measure
from .proposals import lesion_propose
from .revisions import current_mask, mask_revision_create
from .rulers import ruler_save, rulers_delete

__all__ = [
    "EDITABLE_STATUSES",
    "EXPORTERS",
    "KEPT_DECISIONS",
    "current_mask",
    "lease_release",
    "lease_take",
    "lesion_decide",
    "lesion_propose",
    "mask_revision_create",
    "mask_save",
    "ruler_save",
    "rulers_delete",
    "study_approve",
    "study_export_nifti",
    "study_export_report",
    "study_export_rtstruct",
    "study_export_seg",
    "study_ground_truth_apply",
    "study_lesions_measure",
    "study_prediction_apply",
    "study_reopen",
    "studies_lesions_measure",
]
