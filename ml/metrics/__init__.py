"""Voxel-wise and lesion-wise evaluation of a predicted mask against ground truth.

``evaluate_case`` follows docs/METHOD.md section 4 (and Table 2 of the paper): voxel
DSC, precision and recall; lesion-wise detection by the paper's rule (a
ground-truth lesion is detected when any of its voxels is predicted) and by
one-to-one matching of connected components at IoU >= 0.5; false-positive
lesions; small (<= 1500 mm3) and large lesions reported apart with their pixel
recall. ``aggregate`` pools per-case results into the paper's tables.
"""

from __future__ import annotations

from ml.metrics.case import (
    SMALL_LESION_MAX_MM3,
    aggregate,
    detection_summary,
    evaluate_case,
    json_finite,
)

__all__ = [
    "SMALL_LESION_MAX_MM3",
    "aggregate",
    "detection_summary",
    "evaluate_case",
    "json_finite",
]
