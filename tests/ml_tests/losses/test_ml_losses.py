from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ml.lesions import lesion_volume_map
from ml.losses import DiceLoss, VolumeAwareDiceLoss, build_loss


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float32))[None, None]


def paper_example() -> tuple[np.ndarray, np.ndarray]:
    """Three separated cuboids of 1800, 450 and 200 voxels; the small one missed."""
    gt = np.zeros((10, 40, 70), dtype=np.uint8)
    gt[0:10, 0:18, 0:10] = 1  # 1800
    gt[0:10, 0:9, 20:25] = 1  # 450
    gt[0:10, 0:4, 40:45] = 1  # 200
    pred = gt.copy()
    pred[0:10, 0:4, 40:45] = 0
    return gt, pred


def test_paper_worked_example():
    gt, pred = paper_example()
    vm = lesion_volume_map(gt)
    assert sorted(np.unique(vm).tolist()) == [0, 200, 450, 1800]
    br = VolumeAwareDiceLoss(reweight="batch", eps=1e-6)
    w = br.weights(_t(gt), _t(vm))[0, 0].numpy()
    assert w[0, 0, 0] == pytest.approx(1.0)
    assert w[0, 0, 20] == pytest.approx(2.0)
    assert w[0, 0, 40] == pytest.approx(3.0)
    assert DiceLoss(eps=1e-6)(_t(pred), _t(gt), _t(vm)).item() == pytest.approx(
        -4500 / 4700, abs=1e-6
    )
    assert DiceLoss(eps=1e-6)(_t(pred), _t(gt)).item() == pytest.approx(-0.957, abs=1e-3)
    expected = -(1 + 2450 / 3300) * 2700 / 5550
    got = br(_t(pred), _t(gt), _t(vm)).item()
    assert got == pytest.approx(expected, abs=1e-6)
    assert got == pytest.approx(-0.848, abs=1e-3)


@pytest.mark.parametrize(
    "loss",
    [
        DiceLoss(),
        VolumeAwareDiceLoss("batch"),
        VolumeAwareDiceLoss("constant", lambda_c=2500),
        VolumeAwareDiceLoss("constant", lambda_c=7),
    ],
)
@pytest.mark.parametrize("shape", [(5, 7, 9), (1, 3, 2), (13, 1, 11)])
def test_perfect_prediction_scores_minus_one(loss, shape):
    rng = np.random.default_rng(sum(shape))
    gt = (rng.random(shape) < 0.3).astype(np.uint8)
    gt.flat[0] = 1
    vm = lesion_volume_map(gt)
    assert loss(_t(gt), _t(gt), _t(vm)).item() == pytest.approx(-1.0, abs=1e-6)


def test_batch_sums_over_samples():
    # Two samples of one batch: one Dice over the batch, not a mean of Dice values.
    gt = np.zeros((2, 1, 3, 4, 5), dtype=np.float32)
    gt[0, 0, 1, 1, 1:4] = 1  # 3 voxels, predicted
    gt[1, 0, 0, 0, 0] = 1  # 1 voxel, missed
    pred = gt.copy()
    pred[1] = 0
    vm = np.stack([lesion_volume_map(g[0])[None] for g in gt]).astype(np.float32)
    dice = DiceLoss(eps=1e-9)(torch.from_numpy(pred), torch.from_numpy(gt), torch.from_numpy(vm))
    assert dice.item() == pytest.approx(-6 / 7, abs=1e-6)
    # BR over the batch: lambda = 3; weights 1 (3-voxel lesion) and sqrt(3).
    vol = VolumeAwareDiceLoss("batch", eps=1e-9)(
        torch.from_numpy(pred), torch.from_numpy(gt), torch.from_numpy(vm)
    )
    gwg = 3 + math.sqrt(3)
    c = 1 + 4 / gwg
    assert vol.item() == pytest.approx(-c * 3 / (3 + gwg), abs=1e-6)


def test_constant_and_batch_reweight_differ_as_the_paper_says():
    gt, pred = paper_example()
    vm = _t(lesion_volume_map(gt))
    br = VolumeAwareDiceLoss("batch", eps=1e-6)
    cr_same = VolumeAwareDiceLoss("constant", lambda_c=1800, eps=1e-6)
    cr_small = VolumeAwareDiceLoss("constant", lambda_c=500, eps=1e-6)
    # CR with lambda equal to the batch's largest lesion is BR.
    assert cr_same(_t(pred), _t(gt), vm).item() == pytest.approx(
        br(_t(pred), _t(gt), vm).item(), abs=1e-7
    )
    # BR weights do not depend on the scale of the volumes; CR weights do.
    assert torch.allclose(br.weights(_t(gt), vm * 4) * 1, br.weights(_t(gt), vm))
    w_cr = cr_small.weights(_t(gt), vm)[0, 0]
    assert w_cr[0, 0, 0].item() == pytest.approx(math.sqrt(500 / 1800))
    assert w_cr[0, 0, 40].item() == pytest.approx(math.sqrt(500 / 200))
    # A smaller lambda_c shrinks g.Wg relative to p.p, so missing the small lesion costs less.
    assert cr_small(_t(pred), _t(gt), vm).item() != pytest.approx(
        br(_t(pred), _t(gt), vm).item(), abs=1e-3
    )
    # Missing a small lesion costs more under vol-dice than under Dice.
    assert br(_t(pred), _t(gt), vm).item() > DiceLoss(eps=1e-6)(_t(pred), _t(gt)).item()


def test_cropped_lesion_keeps_full_volume_weight():
    gt = np.zeros((12, 6, 6), dtype=np.uint8)
    gt[0:12, 1:3, 1:3] = 1  # 48 voxels, cut by the crop below
    gt[2:3, 4:5, 4:5] = 1  # 1 voxel
    vm = lesion_volume_map(gt)
    crop = (slice(0, 4), slice(None), slice(None))
    loss = VolumeAwareDiceLoss("batch")
    w = loss.weights(_t(gt[crop]), _t(vm[crop]))[0, 0]
    assert w[0, 1, 1].item() == pytest.approx(1.0)
    assert w[2, 4, 4].item() == pytest.approx(math.sqrt(48.0))


@pytest.mark.parametrize(
    "loss",
    [DiceLoss(), VolumeAwareDiceLoss("batch"), VolumeAwareDiceLoss("constant", lambda_c=1000)],
)
def test_empty_foreground(loss):
    gt = np.zeros((3, 5, 7), dtype=np.uint8)
    vm = lesion_volume_map(gt)
    assert loss(_t(gt), _t(gt), _t(vm)).item() == pytest.approx(-1.0)
    p = torch.full((1, 1, 3, 5, 7), 0.5, requires_grad=True)
    value = loss(p, _t(gt), _t(vm))
    assert value.item() == pytest.approx(-1.0 / (0.25 * 105 + 1.0))  # -eps / (p.p + eps), C = 1
    value.backward()
    assert torch.isfinite(p.grad).all() and (p.grad > 0).all()  # pushes p towards 0


@pytest.mark.parametrize(
    "loss",
    [DiceLoss(), VolumeAwareDiceLoss("batch"), VolumeAwareDiceLoss("constant", lambda_c=2500)],
)
def test_gradients_finite_and_descend(loss):
    gt, _ = paper_example()
    vm = _t(lesion_volume_map(gt))
    logits = torch.zeros((1, 1, *gt.shape), requires_grad=True)
    opt = torch.optim.SGD([logits], lr=50.0)
    first = None
    for _ in range(5):
        opt.zero_grad()
        value = loss(torch.sigmoid(logits), _t(gt), vm)
        value.backward()
        assert torch.isfinite(logits.grad).all()
        first = value.item() if first is None else first
        opt.step()
    assert value.item() < first


def test_vol_dice_gradient_favours_small_lesions():
    gt, _ = paper_example()
    vm = _t(lesion_volume_map(gt))
    p = torch.full((1, 1, *gt.shape), 0.5, requires_grad=True)
    VolumeAwareDiceLoss("batch")(p, _t(gt), vm).backward()
    g = -p.grad[0, 0]
    assert g[0, 0, 40] > g[0, 0, 20] > g[0, 0, 0] > 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"reweight": "median"},
        {"reweight": "constant"},
        {"reweight": "constant", "lambda_c": 0},
        {"reweight": "batch", "lambda_c": 100},
        {"reweight": "batch", "eps": 0},
    ],
)
def test_invalid_options_raise(kwargs):
    with pytest.raises(ValueError):
        VolumeAwareDiceLoss(**kwargs)


def test_invalid_shapes_and_names_raise():
    with pytest.raises(ValueError):
        DiceLoss(eps=-1)
    with pytest.raises(ValueError):
        DiceLoss()(torch.zeros(1, 2, 3, 3, 3), torch.zeros(1, 2, 3, 3, 3))
    with pytest.raises(ValueError):
        VolumeAwareDiceLoss()(
            torch.zeros(1, 1, 3, 3, 3), torch.zeros(1, 1, 3, 3, 3), torch.zeros(1, 1, 3, 3, 2)
        )
    with pytest.raises(ValueError):
        build_loss("focal")
    assert isinstance(build_loss("vol_dice_cr", lambda_c=500), VolumeAwareDiceLoss)
