"""Prepared-study directories as training cases, and the samplers that cut
U-Net slabs and DeepMedic segments from them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml.inference.sliding import head_bbox
from ml.lesions import lesion_volume_map


@dataclass
class Case:
    case_id: str
    image: np.ndarray  # float32 (2, D, H, W), cropped to the head box when asked
    gt: np.ndarray  # uint8 (D, H, W)
    volume_map: np.ndarray  # int32 (D, H, W), lesion sizes on the *whole* ground truth
    spacing_mm: tuple[float, float, float]
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @property
    def has_tumour(self) -> bool:
        return bool(self.tumour_voxels().size)

    def tumour_voxels(self) -> np.ndarray:
        """Flat indices of ground-truth voxels (cached: sampled every step)."""
        if "fg" not in self._cache:
            self._cache["fg"] = np.flatnonzero(self.gt)
        return self._cache["fg"]

    def tumour_slices(self) -> np.ndarray:
        if "fg_z" not in self._cache:
            self._cache["fg_z"] = np.flatnonzero(self.gt.any(axis=(1, 2)))
        return self._cache["fg_z"]

    def background_voxels(self) -> np.ndarray:
        """Flat indices of non-tumour voxels inside the head (anywhere if no head is found)."""
        if "bg" not in self._cache:
            inside = (np.abs(self.image[0] - self.image[0, 0, 0, 0]) > 1e-3) & (self.gt == 0)
            idx = np.flatnonzero(inside)
            self._cache["bg"] = idx if idx.size else np.flatnonzero(self.gt == 0)
        return self._cache["bg"]


def read_spacing(study_dir: Path) -> tuple[float, float, float]:
    meta = json.loads((study_dir / "study.json").read_text())
    spacing = meta["grid"]["spacing_mm"]
    return (float(spacing[0]), float(spacing[1]), float(spacing[2]))


def load_case(study_dir: str | Path, *, crop_to_head: bool = True, connectivity: int = 26) -> Case:
    study_dir = Path(study_dir)
    gt_path = study_dir / "ground_truth.npy"
    if not gt_path.exists():
        raise ValueError(f"{study_dir} has no ground_truth.npy; it cannot be used for training")
    image = np.load(study_dir / "model_input.npy").astype(np.float32, copy=False)
    gt = (np.load(gt_path) != 0).astype(np.uint8)
    if image.ndim != 4 or image.shape[0] != 2 or image.shape[1:] != gt.shape:
        raise ValueError(
            f"{study_dir}: model_input {image.shape} and ground truth {gt.shape} disagree"
        )
    # Lesion volumes come from the whole mask before any crop (docs/METHOD.md section 1).
    volume_map = lesion_volume_map(gt, connectivity)
    if crop_to_head:
        y0, x0, y1, x1 = head_bbox(image)
        image = np.ascontiguousarray(image[:, :, y0:y1, x0:x1])
        gt = np.ascontiguousarray(gt[:, y0:y1, x0:x1])
        volume_map = np.ascontiguousarray(volume_map[:, y0:y1, x0:x1])
    return Case(study_dir.name, image, gt, volume_map, read_spacing(study_dir))


def _crop(arr: np.ndarray, start: tuple[int, ...], size: tuple[int, ...]) -> np.ndarray:
    """Crop the last len(size) axes at ``start`` (may be negative / overflow): zero padded."""
    lead = arr.shape[: arr.ndim - len(size)]
    out = np.zeros(lead + tuple(size), dtype=arr.dtype)
    src, dst = [], []
    for s, n, dim in zip(start, size, arr.shape[arr.ndim - len(size) :], strict=True):
        a, b = max(0, s), min(dim, s + n)
        if a >= b:
            return out
        src.append(slice(a, b))
        dst.append(slice(a - s, b - s))
    out[(..., *dst)] = arr[(..., *src)]
    return out


def sample_slab(
    case: Case, slab_depth: int, *, want_tumour: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, gt, volume_map) of ``slab_depth`` consecutive slices, full in-plane.

    With ``want_tumour`` the slab contains a random tumour voxel's slice (cases
    shorter than a slab are zero-padded along z).
    """
    d = case.gt.shape[0]
    if want_tumour and case.has_tumour:
        z = int(rng.choice(case.tumour_slices()))
        lo, hi = max(0, z - slab_depth + 1), min(z, d - slab_depth)
        z0 = int(rng.integers(lo, hi + 1)) if hi >= lo else 0
    else:
        z0 = int(rng.integers(0, max(0, d - slab_depth) + 1))
    h, w = case.gt.shape[1:]
    start, size = (z0, 0, 0), (slab_depth, h, w)
    return (
        _crop(case.image, start, size),
        _crop(case.gt, start, size),
        _crop(case.volume_map, start, size),
    )


def sample_segment(
    case: Case, segment_dhw: tuple[int, int, int], *, foreground: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(image, gt) segment centred on a tumour voxel or on a background voxel inside the head."""
    idx = case.tumour_voxels() if foreground and case.has_tumour else case.background_voxels()
    centre = np.unravel_index(int(rng.choice(idx)), case.gt.shape)
    start = tuple(int(c) - s // 2 for c, s in zip(centre, segment_dhw, strict=True))
    return _crop(case.image, start, segment_dhw), _crop(case.gt, start, segment_dhw)


def sample_head_window(
    case: Case, out_depth: int, halo: int, *, want_tumour: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, gt, loss_mask) of a DeepMedic head window (the case is already head-cropped).

    In-plane: the whole case (its head box). Along z: ``out_depth`` output
    slices (containing a random tumour voxel's slice with ``want_tumour``) plus
    up to ``halo`` slices of context on each side, clamped inside the volume the
    way ``predict_deepmedic`` clamps its tiles: an output slice then sees the
    same input (and the same zero padding beyond the volume's ends) as at
    whole-study inference. ``loss_mask`` (bool, like ``gt``) marks the output
    slices. Cases with fewer slices than a window give the whole case.
    """
    d = case.gt.shape[0]
    n_out = min(out_depth, d)
    if want_tumour and case.has_tumour:
        z = int(rng.choice(case.tumour_slices()))
        o0 = int(rng.integers(max(0, z - n_out + 1), min(z, d - n_out) + 1))
    else:
        o0 = int(rng.integers(0, d - n_out + 1))
    o1 = o0 + n_out
    a, b = max(0, o0 - halo), min(d, o1 + halo)
    mask = np.zeros((b - a, *case.gt.shape[1:]), dtype=bool)
    mask[o0 - a : o1 - a] = True
    return case.image[:, a:b], case.gt[a:b], mask
