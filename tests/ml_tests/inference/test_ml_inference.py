from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from ml.atomic import atomic_write_json, sha256_file
from ml.inference import EnsemblePredictor, head_bbox, predict_deepmedic, predict_unet
from ml.inference.sliding import slab_starts, tent_weights
from ml.networks import build, network_kwargs
from ml.networks.checkpoint import save_checkpoint

torch.set_num_threads(2)


class FakeUNet(nn.Module):
    """Logit = 10 * (MR - 0.5): probability ~1 where MR is 1, ~0 where 0."""

    def forward(self, x):
        return 10.0 * (x[:, :1] - 0.5)


class FakeDeepMedic(nn.Module):
    z_halo = 2

    def forward(self, x):
        t = 10.0 * (x[:, 1:2] - 0.5)
        return torch.cat([torch.zeros_like(t), t], dim=1)


@pytest.mark.parametrize(
    "depth,slab,stride", [(3, 8, 4), (8, 8, 4), (9, 8, 4), (21, 8, 6), (80, 8, 8)]
)
def test_slabs_cover_every_slice(depth, slab, stride):
    starts = slab_starts(depth, slab, stride)
    covered = np.zeros(max(depth, slab), bool)
    for s in starts:
        covered[s : s + slab] = True
    assert covered[:depth].all() and starts[-1] == max(0, depth - slab)
    assert tent_weights(8).tolist() == [1, 2, 3, 4, 4, 3, 2, 1]


@pytest.mark.parametrize("depth", [1, 5, 8, 13])
def test_unet_sliding_any_depth_matches_fake(depth):
    image = np.zeros((2, depth, 12, 10), np.float32)
    image[0, depth // 2, 3:5, 4:7] = 1.0
    prob = predict_unet(FakeUNet(), image, slab_depth=8, stride=3)
    assert prob.shape == (depth, 12, 10)
    assert np.allclose(
        prob, torch.sigmoid(torch.from_numpy(10 * (image[0] - 0.5))).numpy(), atol=1e-6
    )


@pytest.mark.parametrize("depth,stride,batch", [(8, 4, 3), (13, 3, 2), (21, 6, 4), (21, 8, 5)])
def test_unet_slab_batches_do_not_change_the_result(depth, stride, batch):
    net = build("unet", "lite").eval()
    image = np.random.default_rng(1).normal(size=(2, depth, 16, 32)).astype(np.float32)
    one = predict_unet(net, image, stride=stride, slab_batch=1)
    many = predict_unet(net, image, stride=stride, slab_batch=batch)
    assert np.allclose(one, many, atol=1e-5)


def test_deepmedic_tiling_equals_single_pass():
    net = build("deepmedic", "lite").eval()
    image = np.random.default_rng(0).normal(size=(2, 23, 14, 17)).astype(np.float32)
    tiled = predict_deepmedic(net, image, tile_depth=5)
    with torch.no_grad():
        full = torch.softmax(net(torch.from_numpy(image)[None]), 1)[0, 1].numpy()
    assert np.allclose(tiled, full, atol=1e-5)


class OutOfMemoryAbove(nn.Module):
    """Wraps a network; raises CUDA's out-of-memory error for inputs with more
    than ``max_voxels`` (batch x slices x rows x cols) and records the sizes seen."""

    def __init__(self, net: nn.Module, max_voxels: int) -> None:
        super().__init__()
        self.net, self.max_voxels, self.seen = net, max_voxels, []
        self.z_halo = getattr(net, "z_halo", 0)

    def forward(self, x):
        b, _, d, h, w = x.shape
        self.seen.append((b, d))
        if b * d * h * w > self.max_voxels:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.net(x)


def _retries(caplog) -> list[int]:
    return [
        int(r.getMessage().rsplit(" ", 1)[1])
        for r in caplog.records
        if "out of memory" in r.getMessage()
    ]


# depth, tile asked, slices that fit in one call (tile + halo 2 on each inner side),
# tiles tried after the first: 16 -> 18 slices > 9, 8 -> 12 > 9, 4 -> 8 fits; etc.
@pytest.mark.parametrize(
    "depth,tile,fit,retries",
    [(23, 16, 9, [8, 4]), (23, 8, 12, []), (7, 5, 5, [2, 1]), (23, 64, 20, [32, 16])],
)
def test_deepmedic_out_of_memory_retries_smaller_tiles(depth, tile, fit, retries, caplog):
    h, w = 6, 5
    net = OutOfMemoryAbove(FakeDeepMedic(), max_voxels=fit * h * w)
    image = np.random.default_rng(1).random((2, depth, h, w)).astype(np.float32)
    reference = predict_deepmedic(FakeDeepMedic(), image, tile_depth=depth)
    with caplog.at_level("WARNING"):
        result = predict_deepmedic(net, image, tile_depth=tile)
    assert np.allclose(result, reference, atol=1e-6)
    assert _retries(caplog) == retries


# 21 slices, stride 4 -> 5 slabs; slabs per call asked, slabs that fit, retries
@pytest.mark.parametrize(
    "batch,fit_batch,retries", [(4, 1, [2, 1]), (4, 2, [2]), (3, 2, [1]), (2, 5, [])]
)
def test_unet_out_of_memory_retries_fewer_slabs(batch, fit_batch, retries, caplog):
    image = np.random.default_rng(2).random((2, 21, 6, 5)).astype(np.float32)
    net = OutOfMemoryAbove(FakeUNet(), max_voxels=fit_batch * 8 * 6 * 5)
    with caplog.at_level("WARNING"):
        result = predict_unet(net, image, stride=4, slab_batch=batch)
    assert np.allclose(result, predict_unet(FakeUNet(), image, stride=4), atol=1e-6)
    assert _retries(caplog) == retries


def test_out_of_memory_at_size_one_is_raised():
    image = np.zeros((2, 9, 4, 4), np.float32)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        predict_deepmedic(OutOfMemoryAbove(FakeDeepMedic(), 0), image, tile_depth=8)
    with pytest.raises(ValueError, match="tile_depth"):
        predict_deepmedic(FakeDeepMedic(), image, tile_depth=0)


def test_head_bbox():
    image = np.full((2, 3, 20, 30), -1.0, np.float32)
    image[:, :, 5:9, 10:21] = 0.3
    assert head_bbox(image, margin_vox=2) == (3, 8, 11, 23)
    assert head_bbox(np.zeros((2, 2, 4, 5), np.float32)) == (0, 0, 4, 5)


def test_predictor_lesions_hand_computed():
    # MR marks two lesions, CT only the larger: the nets disagree on the small one.
    image = np.zeros((2, 6, 16, 16), np.float32)
    image[0, 1:3, 2:5, 2:4] = 1  # 12 voxels, both nets
    image[1, 1:3, 2:5, 2:4] = 1
    image[0, 4, 10, 10:12] = 1  # 2 voxels, U-Net only -> ensemble ~0.5
    image[0, 0, 14, 14] = 1  # 1 voxel, U-Net only
    predictor = EnsemblePredictor(FakeUNet(), FakeDeepMedic(), threshold=0.4, crop_to_head=False)
    spacing = (2.0, 0.5, 0.75)
    pred = predictor.predict(image, spacing)
    assert pred.labels.dtype == np.int32 and pred.ensemble_prob.dtype == np.float32
    assert [les.volume_vox for les in pred.lesions] == [1, 2, 12]
    big = pred.lesions[2]
    assert big.label == 3 and big.volume_mm3 == pytest.approx(12 * 0.75)
    assert big.bbox == (1, 2, 2, 3, 5, 4)
    assert big.centroid_vox == pytest.approx((1.5, 3.0, 2.5))
    assert big.centroid_mm == pytest.approx((3.0, 1.5, 1.875))
    assert big.disagreement == pytest.approx(0.0, abs=1e-3)
    sig5 = 1 / (1 + np.exp(-5.0))  # U-Net sigmoid(5) vs DeepMedic softmax -> sigmoid(-5)
    assert pred.lesions[1].disagreement == pytest.approx(2 * sig5 - 1, abs=1e-5)
    assert pred.lesions[1].mean_prob == pytest.approx(0.5, abs=1e-3)
    assert set(np.unique(pred.labels).tolist()) == {0, 1, 2, 3}
    assert np.array_equal(pred.ensemble_prob, (pred.unet_prob + pred.deepmedic_prob) / 2)


def test_predictor_empty_study():
    pred = EnsemblePredictor(FakeUNet(), FakeDeepMedic()).predict(
        np.zeros((2, 3, 8, 8), np.float32), (2, 1, 1)
    )
    assert pred.lesions == [] and not pred.labels.any()


def _model_dir(tmp_path):
    files = {}
    for arch in ("unet", "deepmedic"):
        net = build(arch, "lite")
        sha = save_checkpoint(
            tmp_path / f"{arch}.pt",
            {
                "arch": arch,
                "preset": "lite",
                "net_kwargs": network_kwargs(arch, "lite"),
                "state_dict": net.state_dict(),
            },
        )
        files[arch] = {"path": f"{arch}.pt", "sha256": sha}
    atomic_write_json(
        tmp_path / "manifest.json",
        {"files": files, "inference": {"threshold": 0.5, "slab_stride": 6}},
    )
    return tmp_path


def test_from_dir_loads_and_checks_sha(tmp_path):
    model_dir = _model_dir(tmp_path)
    predictor = EnsemblePredictor.from_dir(model_dir)
    assert predictor.slab_stride == 6
    image = np.random.default_rng(0).normal(size=(2, 5, 20, 18)).astype(np.float32)
    pred = predictor.predict(image, (2.0, 1.0, 1.0))
    assert pred.unet_prob.shape == pred.deepmedic_prob.shape == pred.labels.shape == (5, 20, 18)
    assert ((pred.ensemble_prob >= 0) & (pred.ensemble_prob <= 1)).all()
    assert (
        sha256_file(model_dir / "unet.pt")
        == json.loads((model_dir / "manifest.json").read_text())["files"]["unet"]["sha256"]
    )
    with open(model_dir / "unet.pt", "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(ValueError, match="sha256"):
        EnsemblePredictor.from_dir(model_dir)


def test_invalid_input_and_threshold():
    with pytest.raises(ValueError):
        EnsemblePredictor(FakeUNet(), FakeDeepMedic(), threshold=1.0)
    with pytest.raises(ValueError):
        EnsemblePredictor(FakeUNet(), FakeDeepMedic()).predict(
            np.zeros((1, 3, 8, 8), np.float32), (1, 1, 1)
        )
