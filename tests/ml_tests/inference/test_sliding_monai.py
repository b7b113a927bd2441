"""Our slab predictor and Dice agree with MONAI's on the same inputs.

MONAI (the field's library) is the reference: ``sliding_window_inference`` with
our windows (8-slice slabs, stride 4, whole planes) and our tent blending as
``roi_weight_map`` must give the same probability map, and ``compute_dice``
the same Dice, empty masks included (``ignore_empty=False``: both empty is 1).
One known difference is left out: a study with fewer slices than a slab is
zero-padded after its last slice by us and on both sides by MONAI.
Speed is compared in ``benchmarks/sliding_vs_monai.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.sliding_vs_monai import monai_unet, ours_unet
from ml.metrics.case import evaluate_case
from ml.networks import build

pytest.importorskip("monai")


@pytest.fixture(scope="module")
def unet() -> torch.nn.Module:
    torch.manual_seed(3)
    return build("unet", "lite").eval()


@pytest.mark.parametrize(
    "shape",
    [
        (13, 20, 17),  # odd sizes, last slab flush with the end (starts 0, 4, 5)
        (8, 16, 16),  # exactly one slab
        (21, 10, 11),  # several slabs, anisotropic in-plane shape
    ],
)
def test_slab_predictor_equals_monai_sliding_window(
    unet: torch.nn.Module, shape: tuple[int, int, int]
) -> None:
    rng = np.random.default_rng(sum(shape))
    image = rng.normal(size=(2, *shape)).astype(np.float32)
    ours = ours_unet(unet, image)
    theirs = monai_unet(unet, image)
    assert ours.shape == theirs.shape == shape
    assert float(np.abs(ours - theirs).max()) < 1e-5
    assert float(ours.std()) > 0  # a constant map would agree trivially


def _cube(shape: tuple[int, int, int], z: slice, y: slice, x: slice) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[z, y, x] = True
    return m


SHAPE = (6, 7, 5)
DICE_CASES = [
    # (pred, gt, hand-computed Dice)
    (np.zeros(SHAPE, bool), np.zeros(SHAPE, bool), 1.0),  # both empty
    (_cube(SHAPE, slice(0, 1), slice(0, 1), slice(0, 1)), np.zeros(SHAPE, bool), 0.0),
    (np.zeros(SHAPE, bool), _cube(SHAPE, slice(2, 4), slice(2, 4), slice(2, 4)), 0.0),
    (  # 8 voxels vs 4 of them: 2*4 / (8+4)
        _cube(SHAPE, slice(2, 4), slice(2, 4), slice(2, 4)),
        _cube(SHAPE, slice(2, 3), slice(2, 4), slice(2, 4)),
        2 * 4 / 12,
    ),
    (  # 2x3x1 vs 2x2x1 shifted by one row: overlap 2*1*1=2 ... 2*2/(6+4)
        _cube(SHAPE, slice(0, 2), slice(0, 3), slice(4, 5)),
        _cube(SHAPE, slice(0, 2), slice(2, 4), slice(4, 5)),
        2 * 2 / 10,
    ),
]


@pytest.mark.parametrize(("pred", "gt", "expected"), DICE_CASES)
def test_dice_agrees_with_monai(pred: np.ndarray, gt: np.ndarray, expected: float) -> None:
    from monai.metrics import compute_dice

    ours = evaluate_case(pred, gt, (2.0, 0.5, 0.7))["dsc"]
    theirs = compute_dice(
        torch.from_numpy(pred)[None, None].float(),
        torch.from_numpy(gt)[None, None].float(),
        include_background=True,
        ignore_empty=False,
    )
    assert ours == pytest.approx(expected)
    assert float(theirs[0, 0]) == pytest.approx(expected)
