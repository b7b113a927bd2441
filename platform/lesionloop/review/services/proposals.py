"""Click to add: propose a lesion grown from a clicked voxel (nothing is stored).

The clinician clicks on a lesion the model missed; ``lesion_propose`` grows one from the
click (``ml.lesions.grow``: the current model's ensemble probability map when it has a
peak there, else the contrast T1 MR) within ``radius_mm``, without the voxels of
lesions already on the working mask, and answers with the proposal. The viewer shows
it; accepting it is an ordinary mask save (``mask_save``, with its lease and revision
checks), so proposing needs no lease and writes nothing, not even an audit event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.ndimage  # noqa: F401  loaded with the web process, not on the first click

from lesionloop.core.exceptions import DomainError
from lesionloop.studies import storage
from lesionloop.studies.models import Study
from ml.lesions.diameters import lesion_diameters
from ml.lesions.grow import grow_from_click, run_lengths
from ml.lesions.voxels import dense_from_voxels

from ._common import _require_editable, _shape, _spacing
from .masks import _prob
from .revisions import current_voxels

DEFAULT_RADIUS_MM = 20.0
MAX_RADIUS_MM = 50.0
MAX_IGNORE_LABELS = 1000


def _study(study_id: int) -> Study:
    study = Study.objects.filter(pk=study_id).first()
    if study is None:
        raise DomainError("No such study.", code="not_found", status_code=404)
    _require_editable(study)
    if not study.grid:
        raise DomainError("The study has no images yet.", code="not_ready", status_code=409)
    return study


def _check_point(point_zyx: tuple[int, int, int], shape: tuple[int, int, int]) -> None:
    if not all(0 <= int(c) < n for c, n in zip(point_zyx, shape, strict=True)):
        raise DomainError(
            f"The point (z, y, x) = {list(point_zyx)} is outside the volume; z (slice) must "
            f"be in 0..{shape[0] - 1}, y (row) in 0..{shape[1] - 1}, x (column) in "
            f"0..{shape[2] - 1}.",
            code="bad_point",
            extra={"shape_dhw": list(shape)},
        )


def _check_radius(radius_mm: float) -> None:
    if not (np.isfinite(radius_mm) and 0 < radius_mm <= MAX_RADIUS_MM):
        raise DomainError(
            f"radius_mm must be in (0, {MAX_RADIUS_MM:g}] mm, got {radius_mm!r}.",
            code="bad_radius",
        )


def _image(study: Study) -> np.ndarray | None:
    path = storage.prepared_dir(study.pk) / "display_mr.npy"
    return np.load(path, mmap_mode="r") if path.exists() else None


def _drawn(study: Study, ignore_labels: Sequence[int]) -> np.ndarray:
    """The working mask, uint16 (D, H, W), without ``ignore_labels`` (labels the viewer
    has erased and not saved yet): built from its nonzero voxels, so leaving labels out
    costs O(lesion voxels)."""
    idx, values = current_voxels(study)
    if len(ignore_labels):
        keep = ~np.isin(values, np.asarray(ignore_labels, dtype=np.int64))
        idx, values = idx[keep], values[keep]
    return dense_from_voxels((idx, values), _shape(study))


def _check_ignore(labels: Sequence[int]) -> None:
    if len(labels) > MAX_IGNORE_LABELS or not all(0 < int(v) <= 65535 for v in labels):
        raise DomainError(
            f"ignore_labels must hold at most {MAX_IGNORE_LABELS} labels, each 1..65535.",
            code="bad_labels",
        )


def lesion_propose(
    *,
    study_id: int,
    point_zyx: tuple[int, int, int],
    radius_mm: float = DEFAULT_RADIUS_MM,
    ignore_labels: Sequence[int] = (),
) -> dict[str, Any]:
    """A lesion grown from voxel ``point_zyx`` (slice, row, column), not stored.

    Returns ``bbox`` (z0, y0, x0, z1, y1, x1, exclusive), ``runs`` (``run_lengths`` of the
    mask on the box), ``volume_vox``, ``volume_mm3``, ``longest_axial_diameter_mm``,
    ``longest_diameter_mm``, ``method`` ("probability" | "image"), ``seed`` (the peak
    voxel grown from), ``threshold``, ``radius_mm``, ``revision`` (the working mask it
    avoids). ``ignore_labels``: labels the viewer has erased (whole or in part) and not
    saved yet; their voxels on the saved mask count as free, so the answer follows what the
    reviewer sees. 400 ``bad_point`` / ``bad_radius`` / ``bad_labels``; 404 ``not_found``;
    409 ``approved`` /
    ``not_ready``; 422 ``no_lesion_found`` (nothing stands out there, or the click is on
    a lesion already drawn).
    """
    study = _study(study_id)
    shape, spacing = _shape(study), _spacing(study)
    point = tuple(int(c) for c in point_zyx)
    _check_point(point, shape)  # type: ignore[arg-type]
    _check_radius(radius_mm)
    _check_ignore(ignore_labels)
    drawn = _drawn(study, ignore_labels)
    label = int(drawn[point])
    if label:
        raise DomainError(
            f"The voxel clicked already belongs to lesion {label}; click outside the lesions "
            "on the mask to add one.",
            code="no_lesion_found",
            status_code=422,
            extra={"label": label},
        )
    prob, image = _prob(study), _image(study)
    if prob is None and image is None:
        raise DomainError("The study has no images yet.", code="not_ready", status_code=409)
    grown = grow_from_click(
        seed_zyx=point,
        spacing_mm=spacing,
        radius_mm=radius_mm,
        prob=prob,
        image=image,
        exclude=drawn,
    )
    if grown is None:
        raise DomainError(
            f"No lesion stands out within {radius_mm:g} mm of the click: neither the model's "
            "probability nor the MR signal has a peak there. Draw the lesion instead.",
            code="no_lesion_found",
            status_code=422,
        )
    sizes = lesion_diameters(grown.mask, spacing)
    return {
        "bbox": list(grown.bbox),
        "runs": run_lengths(grown.mask),
        "volume_vox": grown.volume_vox,
        "volume_mm3": grown.volume_vox * float(np.prod(spacing)),
        "longest_axial_diameter_mm": round(sizes.longest_axial_diameter_mm, 2),
        "longest_diameter_mm": round(sizes.longest_diameter_mm, 2),
        "method": grown.method,
        "seed": list(grown.seed_zyx),
        "threshold": round(grown.threshold, 4),
        "radius_mm": radius_mm,
        "revision": study.revision_number,
    }
