"""Where image voxels sit in patient space: slice axes, the slice-normal sort, the grid.

One home for the geometry that ingest (``ml.imaging.dicom_io``), the DICOM exporters
(``ml.imaging.rtstruct``, ``ml.imaging.dicom_seg``) and the synthetic scanner
(``ml.synthetic``) share:

- ``slice_axes``: the unit row / column directions and the slice normal of an
  ImageOrientationPatient (DICOM PS3.3 C.7.6.2.1.1: the first three values are the
  direction of a row, the last three of a column; the normal is their cross product).
- ``order_along_normal`` / ``drop_repeated_positions``: slices sorted by the distance
  of their ImagePositionPatient along that normal, one slice per position.
- ``SliceGeometry``: one DICOM slice's pixel <-> patient-millimetre mapping.
- ``sort_slices`` / ``ct_grid``: pydicom datasets of one series in ingest's order and
  the regular grid they span.
- ``GridGeometry``: a regular grid in patient (LPS) coordinates in SimpleITK's
  (x, y, z) order: the planning CT's grid for the exporters (``ct_grid``) and the
  acquisition grids of the synthetic scanner.

NumPy only at import time (no SimpleITK, pydicom, torch or Django): SimpleITK is
imported inside ``GridGeometry.reference`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import SimpleITK as sitk
    from pydicom.dataset import Dataset

# sitk direction matrices (row-major, column j = direction of image axis j, LPS).
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
# Sagittal as scanners write it: rows run anterior->posterior, columns head->feet,
# slices right->left (ImageOrientationPatient 0\1\0\0\0\-1).
SAGITTAL = (0.0, 0.0, -1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0)

# Two slices closer than this along the normal are at the same position.
SAME_POSITION_MM = 1e-2
# Slices whose row or column directions differ by more than this (per component of
# the unit vectors) have different orientations.
ORIENTATION_TOLERANCE = 1e-3


def slice_axes(iop: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(row_dir, col_dir, normal)``, each a (3,) unit vector, of an orientation.

    ``iop``: the six values of ImageOrientationPatient (row direction, then column
    direction; DICOM PS3.3 C.7.6.2.1.1). Both halves are normalised, then
    ``normal = row_dir x col_dir``, the direction in which a right-handed stack of
    slices advances. No check is made that the halves are orthogonal.
    """
    values = np.asarray(iop, dtype=float)
    row_dir = values[:3] / np.linalg.norm(values[:3])
    col_dir = values[3:] / np.linalg.norm(values[3:])
    return row_dir, col_dir, np.cross(row_dir, col_dir)


def order_along_normal(
    positions_mm: np.ndarray | Sequence[Sequence[float]], normal: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(order, dist_mm)``: slices sorted by their distance along ``normal``.

    ``positions_mm``: (N, 3) ImagePositionPatient of each slice in patient mm;
    ``normal``: (3,) unit slice normal (``slice_axes``). ``order`` (N,) is the stable
    ascending argsort of ``dist = positions_mm @ normal`` (ties keep their input
    order) and ``dist_mm`` (N,) is ``dist`` in that order, in millimetres.
    """
    dist = np.asarray(positions_mm, dtype=float) @ np.asarray(normal, dtype=float)
    order = np.argsort(dist, kind="stable")
    return order, dist[order]


def drop_repeated_positions(
    dist_mm: np.ndarray,
    is_copy: Callable[[int, int], bool],
    clash: Callable[[int, int], Exception],
) -> list[int]:
    """Indices into the sorted ``dist_mm`` (N,) of the slices to keep, one per position.

    Walking the sorted slices, slice ``i`` less than ``SAME_POSITION_MM`` from the
    last kept slice ``k`` is dropped when ``is_copy(k, i)`` says it is a copy of it
    (the caller decides: the same SOP instance twice); otherwise ``clash(k, i)`` is
    raised, since two different slices at one position cannot form a regular volume.
    """
    keep = [0]
    for i in range(1, len(dist_mm)):
        last = keep[-1]
        if abs(dist_mm[i] - dist_mm[last]) < SAME_POSITION_MM:
            if is_copy(last, i):
                continue
            raise clash(last, i)
        keep.append(i)
    return keep


def _sop(ds: Dataset) -> str:
    return str(ds.get("SOPInstanceUID", "?"))


@dataclass(frozen=True)
class SliceGeometry:
    """Where one CT slice's pixels are in patient millimetres."""

    position: np.ndarray  # (3,) ImagePositionPatient: the centre of pixel (0, 0)
    row_dir: np.ndarray  # (3,) unit vector along a row (increasing column index)
    col_dir: np.ndarray  # (3,) unit vector along a column (increasing row index)
    row_spacing: float  # PixelSpacing[0]: mm between adjacent rows
    col_spacing: float  # PixelSpacing[1]: mm between adjacent columns

    @classmethod
    def of(cls, ds: Dataset) -> SliceGeometry:
        """The geometry of a single-frame slice; ``ValueError`` when ImagePositionPatient,
        ImageOrientationPatient or PixelSpacing is missing."""
        for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            if keyword not in ds:
                raise ValueError(f"CT slice {_sop(ds)} has no {keyword}")
        row_dir, col_dir, _normal = slice_axes([float(v) for v in ds.ImageOrientationPatient])
        spacing = [float(v) for v in ds.PixelSpacing]
        return cls(
            position=np.asarray([float(v) for v in ds.ImagePositionPatient], dtype=float),
            row_dir=row_dir,
            col_dir=col_dir,
            row_spacing=spacing[0],
            col_spacing=spacing[1],
        )

    @property
    def normal(self) -> np.ndarray:
        """(3,) unit normal ``row_dir x col_dir``."""
        return np.cross(self.row_dir, self.col_dir)

    def to_patient(self, rc: np.ndarray) -> np.ndarray:
        """(N, 2) (row, col), fractional allowed -> (N, 3) patient mm.

        ``IPP + col * PixelSpacing[1] * row_dir + row * PixelSpacing[0] * col_dir``
        (DICOM PS3.3 C.7.6.2.1.1).
        """
        rc = np.asarray(rc, dtype=float).reshape(-1, 2)
        return (
            self.position
            + np.outer(rc[:, 1] * self.col_spacing, self.row_dir)
            + np.outer(rc[:, 0] * self.row_spacing, self.col_dir)
        )

    def to_pixel(self, xyz: np.ndarray) -> np.ndarray:
        """(N, 3) patient mm -> (N, 2) fractional (row, col) in this slice's plane."""
        d = np.asarray(xyz, dtype=float).reshape(-1, 3) - self.position
        return np.stack(
            [d @ self.col_dir / self.row_spacing, d @ self.row_dir / self.col_spacing], 1
        )


def _check_single_frame_series(datasets: Sequence[Dataset]) -> None:
    series = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    if len(series) != 1:
        raise ValueError(f"CT slices of {len(series)} series given; expected one")
    for ds in datasets:
        if int(ds.get("NumberOfFrames") or 1) > 1:
            raise ValueError(
                f"CT object {_sop(ds)} is multi-frame (enhanced CT); export needs single-frame "
                "CT slices"
            )


def sort_slices(datasets: Sequence[Dataset]) -> list[Dataset]:
    """Single-frame slices of one series, ordered along the slice normal (as ingest does).

    The normal is the first slice's (``slice_axes``); exact copies (the same
    SOPInstanceUID twice at one position) are dropped, like ingest drops them.
    Raises ``ValueError`` for multi-frame objects, slices of several series or
    orientations, two different slices at one position, or fewer than one slice.
    """
    if not datasets:
        raise ValueError("no CT slices given")
    _check_single_frame_series(datasets)
    geoms = [SliceGeometry.of(ds) for ds in datasets]
    ref = geoms[0]
    # Each slice against the series' median orientation, as ingest compares them.
    median_row = np.median([g.row_dir for g in geoms], axis=0)
    median_col = np.median([g.col_dir for g in geoms], axis=0)
    for ds, g in zip(datasets, geoms, strict=True):
        if (
            np.max(np.abs(g.row_dir - median_row)) > ORIENTATION_TOLERANCE
            or np.max(np.abs(g.col_dir - median_col)) > ORIENTATION_TOLERANCE
        ):
            raise ValueError(f"CT slice {_sop(ds)} has a different orientation from the others")
    order, dist = order_along_normal([g.position for g in geoms], ref.normal)
    ordered = [datasets[int(i)] for i in order]

    def clash(a: int, b: int) -> Exception:
        return ValueError(
            f"two different CT slices at one position: {_sop(ordered[a])} and {_sop(ordered[b])}"
        )

    keep = drop_repeated_positions(dist, lambda a, b: _sop(ordered[a]) == _sop(ordered[b]), clash)
    return [ordered[i] for i in keep]


@dataclass(frozen=True)
class GridGeometry:
    """A regular image grid in patient (LPS) coordinates, SimpleITK (x, y, z) order.

    ``size_xyz``: voxels along x, y, z; ``spacing_xyz``: mm between voxel centres;
    ``origin_xyz``: the centre of voxel (0, 0, 0) in patient mm; ``direction``: nine
    values, row-major, column ``j`` = the unit direction of image axis ``j`` (for a
    DICOM series: row_dir, col_dir, normal). Index ``ijk`` sits at
    ``origin + D @ (ijk * spacing)`` (the SimpleITK / ITK convention).
    """

    size_xyz: tuple[int, int, int]
    spacing_xyz: tuple[float, float, float]
    origin_xyz: tuple[float, float, float]
    direction: tuple[float, ...]

    @classmethod
    def centred(
        cls,
        centre_xyz: np.ndarray,
        size_xyz: tuple[int, int, int],
        spacing_xyz: tuple[float, float, float],
        direction: tuple[float, ...],
    ) -> GridGeometry:
        """The grid of ``size_xyz`` voxels of ``spacing_xyz`` mm along ``direction`` whose
        centre (the middle of the voxel-centre extent) is ``centre_xyz`` (patient mm)."""
        d = np.asarray(direction, dtype=float).reshape(3, 3)
        half = (np.asarray(size_xyz, dtype=float) - 1.0) / 2.0 * np.asarray(spacing_xyz)
        origin = np.asarray(centre_xyz, dtype=float) - d @ half
        return cls(
            tuple(int(s) for s in size_xyz),  # type: ignore[arg-type]
            tuple(float(s) for s in spacing_xyz),  # type: ignore[arg-type]
            tuple(float(o) for o in origin),  # type: ignore[arg-type]
            tuple(float(v) for v in direction),
        )

    def reference(self, pixel_id: int | None = None) -> sitk.Image:
        """An empty SimpleITK image on this grid (``pixel_id`` default sitkFloat32)."""
        import SimpleITK as sitk

        img = sitk.Image(list(self.size_xyz), sitk.sitkFloat32 if pixel_id is None else pixel_id)
        img.SetSpacing(self.spacing_xyz)
        img.SetOrigin(self.origin_xyz)
        img.SetDirection(self.direction)
        return img

    def index_to_physical(self, ijk: np.ndarray) -> np.ndarray:
        """(N, 3) continuous indices (x, y, z order) -> (N, 3) LPS points in mm."""
        d = np.asarray(self.direction).reshape(3, 3)
        return np.asarray(self.origin_xyz) + (np.asarray(ijk) * np.asarray(self.spacing_xyz)) @ d.T

    def physical_to_index(self, pts: np.ndarray) -> np.ndarray:
        """(N, 3) LPS points in mm -> (N, 3) continuous indices (x, y, z order)."""
        d = np.asarray(self.direction).reshape(3, 3)
        return ((np.asarray(pts) - np.asarray(self.origin_xyz)) @ d) / np.asarray(self.spacing_xyz)

    def to_dict(self) -> dict[str, object]:
        """JSON-able description (``size_xyz``, ``spacing_xyz_mm``, ``origin_xyz_mm``,
        ``direction``), as ``truth.json`` of a synthetic study records it."""
        return {
            "size_xyz": list(self.size_xyz),
            "spacing_xyz_mm": list(self.spacing_xyz),
            "origin_xyz_mm": list(self.origin_xyz),
            "direction": list(self.direction),
        }

    def mismatch(
        self,
        *,
        origin_xyz: Sequence[float],
        spacing_xyz: Sequence[float],
        direction: Sequence[float],
        size_xyz: Sequence[int],
    ) -> str | None:
        """Why another grid is not this one (tolerance: a tenth of a voxel), or None.

        Compared in turn: the size exactly, each spacing to 10 % of this grid's, each
        direction component to 1e-3, and the origin to a tenth of the smallest
        spacing (mm); the first difference is described in words.
        """
        if tuple(int(v) for v in size_xyz) != self.size_xyz:
            return f"size {tuple(size_xyz)} vs the DICOM slices' {self.size_xyz}"
        spacing = np.asarray(self.spacing_xyz)
        if np.any(np.abs(np.asarray(spacing_xyz, dtype=float) - spacing) > 0.1 * spacing):
            return f"spacing {tuple(spacing_xyz)} vs {self.spacing_xyz} mm"
        if (
            np.max(np.abs(np.asarray(direction, dtype=float) - np.asarray(self.direction)))
            > ORIENTATION_TOLERANCE
        ):
            return "a different orientation"
        if np.linalg.norm(np.asarray(origin_xyz, dtype=float) - self.origin_xyz) > 0.1 * float(
            spacing.min()
        ):
            return f"origin {tuple(origin_xyz)} vs {self.origin_xyz} mm"
        return None


def ct_grid(sorted_slices: Sequence[Dataset]) -> GridGeometry:
    """The grid of slices already ordered by ``sort_slices`` (median slice step).

    Spacing along the normal is the median distance between consecutive slices
    (mm); a single slice takes its SliceThickness (default 1 mm). ``ValueError``
    (``SliceGeometry.of``) for a slice without position, orientation or spacing.
    """
    geoms = [SliceGeometry.of(ds) for ds in sorted_slices]
    ref = geoms[0]
    dist = np.array([g.position @ ref.normal for g in geoms])
    step = (
        float(np.median(np.diff(dist)))
        if len(dist) > 1
        else float(sorted_slices[0].get("SliceThickness") or 1.0)
    )
    direction = np.stack([ref.row_dir, ref.col_dir, ref.normal], axis=1).ravel()
    return GridGeometry(
        size_xyz=(int(sorted_slices[0].Columns), int(sorted_slices[0].Rows), len(sorted_slices)),
        spacing_xyz=(ref.col_spacing, ref.row_spacing, step),
        origin_xyz=tuple(float(v) for v in ref.position),  # type: ignore[arg-type]
        direction=tuple(float(v) for v in direction),
    )
