"""The viewer's rulers, kept with the study for the user who drew them.

A ruler measures the image, not the contour: any role may keep rulers (read-only roles
measure too), on a study in any state once it has images; no lease is needed and no
revision changes. One ruler per user and plane (the viewer draws one per plane): saving
one replaces that user's ruler in that plane. Every save and delete is audited.
"""

from __future__ import annotations

import math
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from lesionloop.audit.services import audit_record
from lesionloop.core.exceptions import DomainError
from lesionloop.studies.models import Study

from ..models import Ruler
from ._common import _shape, _spacing

PLANES = tuple(Ruler.Plane.values)


def plane_geometry(
    plane: str, shape: tuple[int, int, int], spacing_mm: tuple[float, float, float]
) -> tuple[int, int, int, float, float]:
    """``(rows, cols, slices, row_mm, col_mm)`` of a plane's images for a volume of
    ``shape`` (D, H, W) and ``spacing_mm`` (dz, dy, dx): axial (H, W, D, dy, dx), coronal
    (D, W, H, dz, dx), sagittal (D, H, W, dz, dy), as the viewer's planes.js."""
    d, h, w = shape
    dz, dy, dx = spacing_mm
    if plane == "axial":
        return h, w, d, dy, dx
    if plane == "coronal":
        return d, w, h, dz, dx
    return d, h, w, dz, dy


def _point(value: Any, name: str, rows: int, cols: int) -> tuple[float, float]:
    """``[row, col]``: two finite numbers inside the image (pixel centres run from 0 to
    rows - 1; a ruler may end anywhere on a pixel, so up to half a pixel beyond)."""
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise DomainError(f"{name} must be [row, col], two numbers.", code="bad_point")
    row, col = float(value[0]), float(value[1])
    if not (math.isfinite(row) and math.isfinite(col)):
        raise DomainError(f"{name} must be finite numbers.", code="bad_point")
    if not (-0.5 <= row <= rows - 0.5 and -0.5 <= col <= cols - 0.5):
        raise DomainError(
            f"{name} = [{row:g}, {col:g}] lies outside the {rows} x {cols} image.",
            code="bad_point",
        )
    return row, col


def ruler_save(*, study_id: int, user: User, plane: Any, slice_index: Any, a: Any, b: Any) -> Ruler:
    """Keep ``user``'s ruler on slice ``slice_index`` of ``plane`` from ``a`` to ``b``
    (``[row, col]`` in that plane's image pixels), replacing their ruler in that plane.
    ``length_mm`` is computed here from the study's grid spacing (a coronal / sagittal
    row is one slice). 400 ``bad_plane`` (not axial / coronal / sagittal), ``bad_slice``
    (not an integer slice of the plane), ``bad_point`` (not two finite numbers inside the
    image); 404 ``not_found``; 409 ``not_ready`` (no images yet).
    """
    if plane not in PLANES:
        raise DomainError(f"plane must be one of {', '.join(PLANES)}.", code="bad_plane")
    with transaction.atomic():
        try:
            study = Study.objects.select_for_update().get(pk=study_id)
        except Study.DoesNotExist:
            raise DomainError("No such study.", code="not_found", status_code=404) from None
        if not study.grid:
            raise DomainError("The study has no images yet.", code="not_ready", status_code=409)
        rows, cols, count, row_mm, col_mm = plane_geometry(plane, _shape(study), _spacing(study))
        if isinstance(slice_index, bool) or not isinstance(slice_index, int):
            raise DomainError("slice must be an integer.", code="bad_slice")
        if not 0 <= slice_index < count:
            raise DomainError(
                f"slice {slice_index} is outside 0..{count - 1} of the {plane} plane.",
                code="bad_slice",
            )
        (ar, ac), (br, bc) = _point(a, "a", rows, cols), _point(b, "b", rows, cols)
        length = math.hypot((br - ar) * row_mm, (bc - ac) * col_mm)
        replaced = list(
            Ruler.objects.filter(study=study, user=user, plane=plane).values_list("pk", flat=True)
        )
        Ruler.objects.filter(pk__in=replaced).delete()
        ruler = Ruler.objects.create(
            study=study,
            user=user,
            plane=plane,
            slice_index=slice_index,
            a_row=ar,
            a_col=ac,
            b_row=br,
            b_col=bc,
            length_mm=length,
        )
        audit_record(
            event_type="ruler_saved",
            actor=user,
            study=study,
            ruler=ruler.pk,
            plane=plane,
            slice=slice_index,
            length_mm=round(length, 2),
            replaced=replaced,
        )
    return ruler


def rulers_delete(*, study_id: int, user: User, ruler_id: int | None = None) -> int:
    """Delete ``user``'s ruler ``ruler_id`` on the study, or all their rulers on it when
    ``ruler_id`` is None; returns how many went. 404 ``not_found`` for a ruler that is
    not theirs on this study (another user's rulers are never touched)."""
    with transaction.atomic():
        rows = Ruler.objects.select_for_update().filter(study_id=study_id, user=user)
        if ruler_id is not None:
            rows = rows.filter(pk=ruler_id)
        gone = list(rows.values("pk", "plane"))
        if ruler_id is not None and not gone:
            raise DomainError(
                "No such ruler of yours on this study.", code="not_found", status_code=404
            )
        if not gone:
            return 0
        Ruler.objects.filter(pk__in=[g["pk"] for g in gone]).delete()
        audit_record(
            event_type="ruler_deleted",
            actor=user,
            study=study_id,
            rulers=[g["pk"] for g in gone],
            planes=[g["plane"] for g in gone],
        )
    return len(gone)
