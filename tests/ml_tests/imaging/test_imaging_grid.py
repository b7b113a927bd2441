"""Masks travel CT grid -> model grid -> CT grid keeping every lesion and its volume."""

from __future__ import annotations

import json
from pathlib import Path

import cc3d
import numpy as np
import pytest
import SimpleITK as sitk

from ml.imaging.grid import (
    ImageGeometry,
    ct_mask_to_model_grid,
    mask_to_ct_grid,
    model_grid_for,
)
from ml.presets import grid_preset

# Lesion volumes (mm3): from sub-voxel specks to a 30 cm3 metastasis.
VOLUMES_MM3 = [8.0, 20.0, 55.0, 120.0, 400.0, 1500.0, 6000.0, 30000.0]


def _ct_with_lesions(
    size_xyz: tuple[int, int, int], spacing_xyz: tuple[float, float, float], seed: int
) -> tuple[sitk.Image, np.ndarray]:
    """A CT-grid mask with ellipsoidal lesions (labels 1..N) of known volumes."""
    rng = np.random.default_rng(seed)
    nx, ny, nz = size_xyz
    sx, sy, sz = spacing_xyz
    origin = np.array([-(nx - 1) * sx / 2 + 3.3, -(ny - 1) * sy / 2 - 7.1, -40.0 + 0.37])
    labels = np.zeros((nz, ny, nx), dtype=np.uint16)
    extent = np.array([nx * sx, ny * sy, nz * sz])
    centres = []
    for i, vol in enumerate(VOLUMES_MM3, start=1):
        ratios = np.exp(rng.uniform(-0.25, 0.25, 3))
        axes = ratios * (3 * vol / (4 * np.pi * ratios.prod())) ** (1 / 3)
        for _ in range(1000):
            c = origin + rng.uniform(0.2, 0.8, 3) * extent
            if all(np.linalg.norm(c - o) > 40 for o in centres):
                break
        centres.append(c)
        sp = np.array(spacing_xyz)
        lo = np.clip(np.floor((c - axes - origin) / sp).astype(int) - 1, 0, None)
        hi = np.minimum(np.ceil((c + axes - origin) / sp).astype(int) + 2, [nx, ny, nz])
        z, y, x = np.meshgrid(
            *(origin[a] + sp[a] * np.arange(lo[a], hi[a]) for a in (2, 1, 0)), indexing="ij"
        )
        r2 = ((x - c[0]) / axes[0]) ** 2 + ((y - c[1]) / axes[1]) ** 2 + ((z - c[2]) / axes[2]) ** 2
        labels[lo[2] : hi[2], lo[1] : hi[1], lo[0] : hi[0]][r2 <= 1] = i
        if not (labels == i).any():  # sub-voxel: mark the voxel at the centre
            k = np.round((c - origin) / np.array(spacing_xyz)).astype(int)
            labels[k[2], k[1], k[0]] = i
    img = sitk.GetImageFromArray(labels)
    img.SetSpacing(spacing_xyz)
    img.SetOrigin(origin.tolist())
    return img, labels


def _prepared_dir(tmp_path: Path, ct: sitk.Image, preset: str) -> Path:
    model = model_grid_for(ct, np.array([0.0, -5.0, 0.0]), grid_preset(preset))
    d = tmp_path / f"prepared_{preset}"
    d.mkdir()
    meta = {"grid": model.to_dict(), "ct_geometry": ImageGeometry.of(ct).to_dict()}
    (d / "study.json").write_text(json.dumps(meta))
    return d


CASES = [
    # (preset, CT size xyz, CT spacing xyz): planning-CT-like grids finer and coarser
    # than the model grid, in-plane and through-plane.
    ("paper", (320, 320, 90), (0.49, 0.49, 1.25)),
    ("lite", (192, 192, 60), (0.9, 0.9, 2.5)),
    ("lite", (300, 300, 140), (0.6, 0.6, 1.0)),
    ("tiny", (100, 100, 50), (1.9, 1.9, 3.0)),
]


@pytest.mark.parametrize(
    ("preset", "size", "spacing"), CASES, ids=[f"{c[0]}-{c[2][0]}mm" for c in CASES]
)
def test_round_trip_keeps_every_lesion_and_its_volume(
    tmp_path: Path, preset: str, size: tuple[int, int, int], spacing: tuple[float, float, float]
) -> None:  # fmt: skip
    ct_mask, labels = _ct_with_lesions(size, spacing, seed=len(tmp_path.name))
    prepared = _prepared_dir(tmp_path, ct_mask, preset)
    ct_voxel = float(np.prod(spacing))
    spec = grid_preset(preset)

    on_model = ct_mask_to_model_grid(ct_mask, prepared)
    assert on_model.dtype == np.uint8 and set(np.unique(on_model)) <= {0, 1}
    back = sitk.GetArrayFromImage(mask_to_ct_grid(on_model, prepared))
    assert back.shape == labels.shape

    model_labels = cc3d.connected_components(on_model, connectivity=26)
    assert model_labels.max() == len(VOLUMES_MM3), "no lesion dropped or merged on the model grid"
    for i in range(1, len(VOLUMES_MM3) + 1):
        orig = labels == i
        vol = orig.sum() * ct_voxel
        kept = back[orig | _dilate(orig)] > 0
        assert kept.any(), f"lesion {i} ({vol:.0f} mm3) dropped on the way back"
        if vol > 50.0 and vol > 8 * spec.voxel_volume_mm3:
            # Measure the round-tripped volume of this lesion only (lesions are far apart).
            region = _dilate(orig, 6)
            vol_back = (back[region] > 0).sum() * ct_voxel
            assert abs(vol_back - vol) / vol <= 0.10, (i, vol, vol_back)


def _dilate(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=iterations)


def test_label_maps_keep_labels_and_dtype(tmp_path: Path) -> None:
    ct_mask, _ = _ct_with_lesions((160, 160, 50), (1.0, 1.0, 2.5), seed=3)
    prepared = _prepared_dir(tmp_path, ct_mask, "lite")
    model = ct_mask_to_model_grid(ct_mask, prepared)
    labelled = cc3d.connected_components(model, connectivity=26).astype(np.int32)
    back = mask_to_ct_grid(labelled, prepared)
    arr = sitk.GetArrayFromImage(back)
    assert arr.dtype == np.int32
    assert set(np.unique(arr)) == set(np.unique(labelled))
    assert back.GetSize() == ct_mask.GetSize()
    np.testing.assert_allclose(back.GetOrigin(), ct_mask.GetOrigin())
    bool_back = mask_to_ct_grid(model.astype(bool), prepared)
    assert sitk.GetArrayFromImage(bool_back).dtype == np.uint8


def test_empty_masks_and_wrong_shapes(tmp_path: Path) -> None:
    ct_mask, _ = _ct_with_lesions((64, 64, 20), (3.0, 3.0, 4.0), seed=1)
    prepared = _prepared_dir(tmp_path, ct_mask, "tiny")
    empty = sitk.Image(ct_mask.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(ct_mask)
    assert ct_mask_to_model_grid(empty, prepared).sum() == 0
    meta = json.loads((prepared / "study.json").read_text())
    shape = tuple(meta["grid"]["shape_dhw"])
    assert sitk.GetArrayFromImage(mask_to_ct_grid(np.zeros(shape, np.uint8), prepared)).sum() == 0
    with pytest.raises(ValueError):
        mask_to_ct_grid(np.zeros((3, 3, 3), np.uint8), prepared)


def test_model_grid_is_axial_centred_and_covers_the_ct(tmp_path: Path) -> None:
    ct_mask, _ = _ct_with_lesions((200, 180, 61), (0.8, 0.8, 2.5), seed=2)
    spec = grid_preset("lite")
    g = model_grid_for(ct_mask, np.array([12.0, -20.0, 0.0]), spec)
    assert g.direction == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    assert g.shape_dhw[1:] == (256, 256) and g.spacing_mm == (2.0, 1.0, 1.0)
    centre = g.zyx_to_physical(np.array([[0, 127.5, 127.5]]))[0]
    np.testing.assert_allclose(centre[:2], [12.0, -20.0], atol=1e-6)
    z_ct = ct_mask.GetOrigin()[2] + np.array([0, 60 * 2.5])
    z_model = g.origin_xyz_mm[2] + np.array([0, (g.shape_dhw[0] - 1) * 2.0])
    assert z_model[0] >= z_ct[0] - 1e-6 and z_model[1] <= z_ct[1] + 1e-6
    assert (z_ct[1] - z_ct[0]) - (z_model[1] - z_model[0]) < 2.0


def test_flipped_ct_axes_give_the_same_model_mask(tmp_path: Path) -> None:
    ct_mask, _ = _ct_with_lesions((120, 110, 40), (0.9, 0.9, 2.5), seed=5)
    prepared = _prepared_dir(tmp_path, ct_mask, "lite")
    flipped = sitk.Flip(ct_mask, [True, True, False])  # same physical space, reversed axes
    assert flipped.GetDirection() != ct_mask.GetDirection()
    a = ct_mask_to_model_grid(ct_mask, prepared)
    b = ct_mask_to_model_grid(flipped, prepared)
    assert a.sum() > 0
    # Same voxels up to ties between equally covered voxels (float summation order).
    assert a.sum() == b.sum()
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.99
