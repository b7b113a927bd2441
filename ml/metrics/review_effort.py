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
    """Counts of the review of one study (see the module docstring)."""
    if pre.shape != final.shape:
        raise ValueError(f"pre shape {pre.shape} != final shape {final.shape}")
    kept_set = {int(k) for k in kept if int(k) != 0}
    pre_labels = [int(v) for v in np.unique(pre) if v != 0]
    final_kept = np.isin(final, np.asarray(sorted(kept_set), dtype=final.dtype))
    pre_any = pre != 0
    counts = {"unchanged": 0, "edited": 0, "rejected": 0}
    edited_voxels = 0
    for label in pre_labels:
        if label not in kept_set:
            counts["rejected"] += 1
            continue
        changed = int(np.count_nonzero((pre == label) != (final == label)))
        if changed == 0:
            counts["unchanged"] += 1
        else:
            counts["edited"] += 1
            edited_voxels += changed
    added = sorted(kept_set - set(pre_labels))
    n_pre = len(pre_labels)
    return {
        "model_lesions": n_pre,
        "accepted_unchanged": counts["unchanged"],
        "edited": counts["edited"],
        "rejected": counts["rejected"],
        "added": len(added),
        "voxels_added": int(np.count_nonzero(final_kept & ~pre_any)),
        "voxels_removed": int(np.count_nonzero(pre_any & ~final_kept)),
        "edited_voxels": edited_voxels,
        "accepted_unchanged_fraction": None if n_pre == 0 else counts["unchanged"] / n_pre,
    }
