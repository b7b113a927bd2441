"""What a clinician had to do with a model's pre-contour, from the two label masks.

``pre`` is the model's pre-contour and ``final`` the approved working mask, both label
maps uint (D, H, W) on the same grid whose labels keep their identity through the review
(the platform's mask saves keep a lesion's label; a drawn lesion gets a new one).
``kept`` are the labels of ``final`` the clinician kept (accepted, edited or added).

- a pre-contour lesion (label ``L`` of ``pre``) is ``rejected`` when ``L`` is not kept;
  ``unchanged`` when its voxels in ``final`` are exactly its voxels in ``pre``; otherwise
  ``edited``, with ``|pre==L xor final==L|`` voxels changed;
- a kept label absent from ``pre`` is ``added``;
- ``voxels_added`` = kept voxels of ``final`` outside every pre-contour lesion,
  ``voxels_removed`` = pre-contour voxels not kept in ``final`` (binary masks, so moving a
  voxel from one lesion to a touching one changes neither count, and a rejected
  lesion's voxels count as removed);
- ``accepted_unchanged_fraction`` = unchanged / pre-contour lesions (``None`` when the
  model proposed nothing).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def review_effort(pre: np.ndarray, final: np.ndarray, kept: Iterable[int]) -> dict[str, Any]:
    """Counts of the review of one study (see the module docstring).

    A lesion's changed voxels all lie where the masks differ, and each such voxel belongs
    to the label it had before and the one it has after, so two ``bincount`` calls over
    the differing voxels give every lesion's change at once (no pass per lesion).
    """
    if pre.shape != final.shape:
        raise ValueError(f"pre shape {pre.shape} != final shape {final.shape}")
    pre_flat, final_flat = pre.ravel(), final.ravel()
    # Lesion voxels are a sliver of the volume: work on their indices only.
    pre_idx, final_idx = np.flatnonzero(pre_flat), np.flatnonzero(final_flat)
    diff_idx = np.flatnonzero(pre_flat != final_flat)
    n_bins = int(max(pre_flat.max(initial=0), final_flat.max(initial=0))) + 1
    kept_set = {int(k) for k in kept if 0 < int(k) < n_bins}
    pre_counts = np.bincount(pre_flat[pre_idx].astype(np.intp), minlength=n_bins)
    pre_labels = [int(v) for v in np.flatnonzero(pre_counts)]
    changed = np.bincount(pre_flat[diff_idx].astype(np.intp), minlength=n_bins) + np.bincount(
        final_flat[diff_idx].astype(np.intp), minlength=n_bins
    )
    counts = {"unchanged": 0, "edited": 0, "rejected": 0}
    edited_voxels = 0
    for label in pre_labels:
        if label not in kept_set:
            counts["rejected"] += 1
        elif changed[label] == 0:
            counts["unchanged"] += 1
        else:
            counts["edited"] += 1
            edited_voxels += int(changed[label])
    is_kept = np.zeros(n_bins, dtype=bool)
    is_kept[sorted(kept_set)] = True
    # added: kept voxels of final where pre is 0; removed: pre voxels not kept in final.
    kept_final_idx = final_idx[is_kept[final_flat[final_idx]]]
    voxels_added = int(np.count_nonzero(pre_flat[kept_final_idx] == 0))
    voxels_removed = int(np.count_nonzero(~is_kept[final_flat[pre_idx]]))
    n_pre = len(pre_labels)
    return {
        "model_lesions": n_pre,
        "accepted_unchanged": counts["unchanged"],
        "edited": counts["edited"],
        "rejected": counts["rejected"],
        "added": len(kept_set - set(pre_labels)),
        "voxels_added": voxels_added,
        "voxels_removed": voxels_removed,
        "edited_voxels": edited_voxels,
        "accepted_unchanged_fraction": None if n_pre == 0 else counts["unchanged"] / n_pre,
    }
