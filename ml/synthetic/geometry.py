"""Acquisition geometries for the synthetic scanner: where each slice sits in space."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

# sitk direction matrices (row-major, column j = direction of image axis j, LPS).
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
# Sagittal as scanners write it: rows run anterior->posterior, columns head->feet,
# slices right->left (ImageOrientationPatient 0\1\0\0\0\-1).
SAGITTAL = (0.0, 0.0, -1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0)


@dataclass(frozen=True)
class Geometry:
    """A regular image grid in patient (LPS) coordinates, sitk (x, y, z) order."""

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
    ) -> Geometry:
        d = np.asarray(direction, dtype=float).reshape(3, 3)
        half = (np.asarray(size_xyz, dtype=float) - 1.0) / 2.0 * np.asarray(spacing_xyz)
        origin = np.asarray(centre_xyz, dtype=float) - d @ half
        return cls(
            tuple(int(s) for s in size_xyz),
            tuple(float(s) for s in spacing_xyz),
            tuple(float(o) for o in origin),
            tuple(float(v) for v in direction),
        )

    def reference(self, pixel_id: int = sitk.sitkFloat32) -> sitk.Image:
        img = sitk.Image(list(self.size_xyz), pixel_id)
        img.SetSpacing(self.spacing_xyz)
        img.SetOrigin(self.origin_xyz)
        img.SetDirection(self.direction)
        return img

    def index_to_physical(self, ijk: np.ndarray) -> np.ndarray:
        """(N, 3) continuous indices (x, y, z order) -> (N, 3) LPS points."""
        d = np.asarray(self.direction).reshape(3, 3)
        return np.asarray(self.origin_xyz) + (np.asarray(ijk) * np.asarray(self.spacing_xyz)) @ d.T

    def physical_to_index(self, pts: np.ndarray) -> np.ndarray:
        d = np.asarray(self.direction).reshape(3, 3)
        return ((np.asarray(pts) - np.asarray(self.origin_xyz)) @ d) / np.asarray(self.spacing_xyz)

    def to_dict(self) -> dict[str, object]:
        return {
            "size_xyz": list(self.size_xyz),
            "spacing_xyz_mm": list(self.spacing_xyz),
            "origin_xyz_mm": list(self.origin_xyz),
            "direction": list(self.direction),
        }
