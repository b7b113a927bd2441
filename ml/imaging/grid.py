"""The model grid and the mappings between it and the planning CT grid.

The model grid is axial (identity direction, LPS), has the preset's fixed in-plane
size and spacing centred on the head, and slices of the preset's thickness that
cover the CT's cranio-caudal extent. Its geometry is stored in ``study.json``
(``grid``) next to the CT's (``ct_geometry``), so masks can travel both ways:

- ``mask_to_ct_grid``: model-grid mask -> planning CT grid, nearest neighbour
  (labels are preserved), for NIfTI/RTSTRUCT export.
- ``ct_mask_to_model_grid``: a mask drawn on the CT -> model grid, by the fraction
  of each model voxel that the mask covers (>= 0.5), which keeps lesion volumes.

Neither direction ever drops a lesion: a lesion smaller than the target voxel is
kept as the one voxel it covers most.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import cc3d
import numpy as np
import SimpleITK as sitk

from ml.presets import GridSpec

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
MAX_SUPERSAMPLE = 6


@dataclass(frozen=True)
class ImageGeometry:
    """A regular grid; ``shape_dhw`` and ``spacing_mm`` in array order (z, y, x)."""

    shape_dhw: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_xyz_mm: tuple[float, float, float]
    direction: tuple[float, ...]

    @classmethod
    def of(cls, img: sitk.Image) -> ImageGeometry:
        sx, sy, sz = img.GetSize()
        px, py, pz = img.GetSpacing()
        return cls(
            (int(sz), int(sy), int(sx)),
            (float(pz), float(py), float(px)),
            tuple(float(v) for v in img.GetOrigin()),
            tuple(float(v) for v in img.GetDirection()),
        )

    @classmethod
    def from_dict(cls, d: dict) -> ImageGeometry:
        return cls(
            tuple(int(v) for v in d["shape_dhw"]),
            tuple(float(v) for v in d["spacing_mm"]),
            tuple(float(v) for v in d["origin_xyz_mm"]),
            tuple(float(v) for v in d["direction"]),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "shape_dhw": list(self.shape_dhw),
            "spacing_mm": list(self.spacing_mm),
            "origin_xyz_mm": list(self.origin_xyz_mm),
            "direction": list(self.direction),
            "size_xyz": list(self.shape_dhw[::-1]),
            "spacing_xyz_mm": list(self.spacing_mm[::-1]),
        }

    def reference(self, pixel_id: int = sitk.sitkUInt8) -> sitk.Image:
        img = sitk.Image([int(v) for v in self.shape_dhw[::-1]], pixel_id)
        img.SetSpacing(self.spacing_mm[::-1])
        img.SetOrigin(self.origin_xyz_mm)
        img.SetDirection(self.direction)
        return img

    def image(self, arr_dhw: np.ndarray) -> sitk.Image:
        if tuple(arr_dhw.shape) != self.shape_dhw:
            raise ValueError(f"array shape {arr_dhw.shape} does not match grid {self.shape_dhw}")
        img = sitk.GetImageFromArray(arr_dhw)
        img.SetSpacing(self.spacing_mm[::-1])
        img.SetOrigin(self.origin_xyz_mm)
        img.SetDirection(self.direction)
        return img

    def _matrix(self) -> np.ndarray:
        return np.asarray(self.direction, dtype=float).reshape(3, 3)

    def zyx_to_physical(self, idx_zyx: np.ndarray) -> np.ndarray:
        """(N, 3) continuous (z, y, x) indices -> (N, 3) LPS points (x, y, z)."""
        ijk = np.asarray(idx_zyx, dtype=float)[:, ::-1] * np.asarray(self.spacing_mm[::-1])
        return np.asarray(self.origin_xyz_mm) + ijk @ self._matrix().T

    def physical_to_zyx(self, pts: np.ndarray) -> np.ndarray:
        rel = (np.asarray(pts, dtype=float) - np.asarray(self.origin_xyz_mm)) @ self._matrix()
        return (rel / np.asarray(self.spacing_mm[::-1]))[:, ::-1]


@dataclass(frozen=True)
class ModelGrid(ImageGeometry):
    preset: str = "lite"

    def to_dict(self) -> dict[str, object]:
        return {"preset": self.preset, **super().to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> ModelGrid:
        g = ImageGeometry.from_dict(d)
        return cls(
            g.shape_dhw, g.spacing_mm, g.origin_xyz_mm, g.direction, str(d.get("preset", ""))
        )


def model_grid_for(ct: sitk.Image, head_centre_xyz_mm: np.ndarray, spec: GridSpec) -> ModelGrid:
    """Axial grid of the preset: in-plane centred on the head, slices over the CT extent."""
    geom = ImageGeometry.of(ct)
    d, h, w = geom.shape_dhw
    corners = np.array(
        [[z, y, x] for z in (0, d - 1) for y in (0, h - 1) for x in (0, w - 1)], dtype=float
    )
    z_phys = geom.zyx_to_physical(corners)[:, 2]
    z_lo, z_hi = float(z_phys.min()), float(z_phys.max())
    thk = spec.slice_thickness_mm
    n_slices = int(np.floor((z_hi - z_lo) / thk + 1e-6)) + 1
    # Centre the slab on the CT extent; a partial last slice is not worth a padded one.
    z0 = (z_lo + z_hi) / 2.0 - (n_slices - 1) * thk / 2.0
    n = spec.in_plane_size
    sp = spec.in_plane_spacing_mm
    cx, cy = float(head_centre_xyz_mm[0]), float(head_centre_xyz_mm[1])
    origin = (cx - (n - 1) * sp / 2.0, cy - (n - 1) * sp / 2.0, z0)
    return ModelGrid((n_slices, n, n), (thk, sp, sp), origin, IDENTITY, spec.name)


def resample_to(
    img: sitk.Image,
    geom: ImageGeometry,
    *,
    transform: sitk.Transform | None = None,
    interpolator: int = sitk.sitkLinear,
    default: float = 0.0,
    pixel_id: int = sitk.sitkFloat32,
) -> np.ndarray:
    """``img`` sampled on ``geom`` (``transform`` maps ``geom`` points to ``img`` points)."""
    out = sitk.Resample(
        img,
        geom.reference(pixel_id),
        transform if transform is not None else sitk.Transform(),
        interpolator,
        float(default),
        pixel_id,
    )
    return sitk.GetArrayFromImage(out)


def load_study_geometry(prepared_dir: str | os.PathLike[str]) -> tuple[ModelGrid, ImageGeometry]:
    meta = json.loads((Path(prepared_dir) / "study.json").read_text())
    return ModelGrid.from_dict(meta["grid"]), ImageGeometry.from_dict(meta["ct_geometry"])


def _components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    labels = cc3d.connected_components(mask.astype(np.uint8, copy=False), connectivity=26)
    return labels, int(labels.max())


def _keep_lost_lesions(
    src_labels: np.ndarray, n: int, src: ImageGeometry, dst: ImageGeometry, out: np.ndarray,
    value_of: np.ndarray,
) -> None:  # fmt: skip
    """Add, for each source lesion absent from ``out``, the target voxel at its centroid."""
    if n == 0:
        return
    idx = np.argwhere(src_labels > 0)
    lab = src_labels[idx[:, 0], idx[:, 1], idx[:, 2]]
    sums = np.zeros((n + 1, 3))
    np.add.at(sums, lab, idx)
    counts = np.bincount(lab, minlength=n + 1).astype(float)
    shape = np.asarray(dst.shape_dhw)
    for i in range(1, n + 1):
        if counts[i] == 0:
            continue
        members = idx[lab == i]
        tgt = np.round(dst.physical_to_zyx(src.zyx_to_physical(members))).astype(int)
        inside = np.all((tgt >= 0) & (tgt < shape), axis=1)
        tgt = tgt[inside]
        if len(tgt) == 0:
            continue  # the lesion lies outside the target grid altogether
        if np.any(out[tgt[:, 0], tgt[:, 1], tgt[:, 2]] > 0):
            continue
        centre = dst.physical_to_zyx(src.zyx_to_physical((sums[i] / counts[i])[None]))[0]
        # The target voxel nearest the centroid among those the lesion maps into.
        best = tgt[int(np.argmin(np.linalg.norm(tgt - centre, axis=1)))]
        out[best[0], best[1], best[2]] = value_of[i]


def mask_to_ct_grid(mask_dhw: np.ndarray, prepared_dir: str | os.PathLike[str]) -> sitk.Image:
    """A model-grid mask or label map on the planning CT grid (nearest neighbour).

    The dtype is kept (bool becomes uint8). Lesions (connected components, or labels)
    too small to cover a CT voxel centre are kept as the CT voxel at their centre.
    """
    model, ct = load_study_geometry(prepared_dir)
    arr = np.asarray(mask_dhw)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if tuple(arr.shape) != model.shape_dhw:
        raise ValueError(f"mask shape {arr.shape} does not match the model grid {model.shape_dhw}")
    out_img = sitk.Resample(
        model.image(arr), ct.reference(), sitk.Transform(), sitk.sitkNearestNeighbor, 0,
        sitk.GetImageFromArray(arr[:1, :1, :1]).GetPixelID(),
    )  # fmt: skip
    out = sitk.GetArrayFromImage(out_img)
    is_label_map = arr.max() > 1
    if is_label_map:
        comp = arr.astype(np.int64)
        n = int(comp.max())
        value_of = np.arange(n + 1)
    else:
        comp, n = _components(arr > 0)
        value_of = np.ones(n + 1, dtype=np.int64)
    _keep_lost_lesions(comp, n, model, ct, out, value_of)
    result = sitk.GetImageFromArray(out)
    result.CopyInformation(out_img)
    return result


def ct_mask_to_model_grid(mask: sitk.Image, prepared_dir: str | os.PathLike[str]) -> np.ndarray:
    """A mask drawn on the CT (any geometry, resampled physically) -> uint8 0/1 on the model grid.

    Each model voxel takes the fraction of its footprint the mask covers (sampled on
    a sub-voxel lattice, lesion by lesion) and is foreground at >= 0.5, which keeps
    lesion volumes; a lesion that would vanish keeps the voxel it covers most.
    """
    model, _ct = load_study_geometry(prepared_dir)
    return mask_to_model(mask, model)


def mask_to_model(mask: sitk.Image, model: ImageGeometry) -> np.ndarray:
    src = ImageGeometry.of(mask)
    arr = sitk.GetArrayViewFromImage(mask) > 0
    labels, n = _components(arr)
    out = np.zeros(model.shape_dhw, dtype=np.uint8)
    if n == 0:
        return out
    stats = cc3d.statistics(labels)
    bboxes = stats["bounding_boxes"]
    src_sp = np.asarray(src.spacing_mm)
    dst_sp = np.asarray(model.spacing_mm)
    k = np.clip(np.ceil(2.0 * dst_sp / src_sp.min()), 1, MAX_SUPERSAMPLE).astype(int)
    shape = np.asarray(model.shape_dhw)
    src_shape = np.asarray(src.shape_dhw)
    for i in range(1, n + 1):
        bz, by, bx = bboxes[i]
        if bz.stop <= bz.start:
            continue
        lo = np.array([bz.start, by.start, bx.start], dtype=float) - 0.5
        hi = np.array([bz.stop, by.stop, bx.stop], dtype=float) - 0.5
        corners = np.array(
            [[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])]
        )
        tgt = model.physical_to_zyx(src.zyx_to_physical(corners))
        t_lo = np.clip(np.floor(tgt.min(axis=0)).astype(int) - 1, 0, shape)
        t_hi = np.clip(np.ceil(tgt.max(axis=0)).astype(int) + 2, 0, shape)
        if np.any(t_hi <= t_lo):
            continue
        box = t_hi - t_lo
        # Sub-voxel sample points of every model voxel in the box.
        axes = [t_lo[a] - 0.5 + (np.arange(box[a] * k[a]) + 0.5) / k[a] for a in range(3)]
        zz, yy, xx = np.meshgrid(*axes, indexing="ij")
        pts = np.stack([zz.ravel(), yy.ravel(), xx.ravel()], axis=1)
        src_idx = np.round(src.physical_to_zyx(model.zyx_to_physical(pts))).astype(int)
        ok = np.all((src_idx >= 0) & (src_idx < src_shape), axis=1)
        hit = np.zeros(len(pts), dtype=bool)
        si = src_idx[ok]
        hit[ok] = labels[si[:, 0], si[:, 1], si[:, 2]] == i
        frac = hit.reshape(box[0], k[0], box[1], k[1], box[2], k[2]).mean(axis=(1, 3, 5))
        sub = out[t_lo[0] : t_hi[0], t_lo[1] : t_hi[1], t_lo[2] : t_hi[2]]
        if frac.max() <= 0:
            continue
        if frac.max() >= 0.5:
            sub |= (frac >= 0.5).astype(np.uint8)
        else:
            j = np.unravel_index(int(np.argmax(frac)), frac.shape)
            sub[j] = 1
    return out
