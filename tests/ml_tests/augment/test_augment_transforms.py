"""Invariants of each augmentation family (ml.augment): identity at zero strength,
labels binary and aligned, shapes kept, seeds reproducible, anisotropic spacing
respected, no NaN."""

from __future__ import annotations

import numpy as np
import pytest

from ml.augment import AugmentConfig, augment_sample
from ml.augment.intensity import (
    add_noise,
    apply_bias_field,
    apply_gamma,
    bias_polynomial,
    head_mask,
)
from ml.augment.resolution import blur_in_plane, thicken_slices
from ml.augment.spatial import pull_matrix, rotation_matrix, warp

ANISO = (2.0, 1.0, 0.5)  # (z, y, x) mm


def _head(shape=(9, 23, 17), seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A z-scored-looking MR channel: constant background, a noisy ellipsoid head with
    a bright blob; and the blob's label."""
    rng = np.random.default_rng(seed)
    d, h, w = shape
    z, y, x = np.ogrid[:d, :h, :w]
    head = ((z - d / 2) / (d / 2)) ** 2 + ((y - h / 2) / (h / 2.5)) ** 2 + (
        (x - w / 2) / (w / 2.5)
    ) ** 2 < 1
    blob = ((z - d / 2) ** 2 + (y - h / 2) ** 2 + (x - w / 2) ** 2) < 6
    img = np.full(shape, -1.5, dtype=np.float32)
    img[head] = 0.2 + 0.1 * rng.standard_normal(int(head.sum())).astype(np.float32)
    img[blob] = 2.0
    return img, blob.astype(np.uint8)


IDENTITIES = [
    ("bias zero coefficients", lambda x, m: apply_bias_field(x, m, np.zeros(9))),
    ("gamma one", lambda x, m: apply_gamma(x, m, 1.0)),
    ("noise zero std", lambda x, m: add_noise(x, m, 0.0, np.random.default_rng(0))),
    ("blur zero sigma", lambda x, m: blur_in_plane(x, 0.0, ANISO)),
    ("thicken factor one", lambda x, m: thicken_slices(x, 1.0)),
    ("warp zero angles, scale one", lambda x, m: warp(x, (0.0, 0.0, 0.0), 1.0, ANISO)),
]


@pytest.mark.parametrize("name, fn", IDENTITIES, ids=[n for n, _ in IDENTITIES])
def test_identity_at_zero_strength(name, fn):
    x, _ = _head()
    out = fn(x, head_mask(x))
    assert out.shape == x.shape and out is not x
    np.testing.assert_array_equal(out, x)


STRONG = [
    ("bias", lambda x, m, r: apply_bias_field(x, m, r.uniform(-0.3, 0.3, 9))),
    ("gamma 0.6", lambda x, m, r: apply_gamma(x, m, 0.6)),
    ("gamma 1.6", lambda x, m, r: apply_gamma(x, m, 1.6)),
    ("noise", lambda x, m, r: add_noise(x, m, 0.2, r)),
]


@pytest.mark.parametrize("name, fn", STRONG, ids=[n for n, _ in STRONG])
def test_intensity_keeps_background_and_head_statistics(name, fn):
    x, _ = _head()
    m = head_mask(x)
    out = fn(x, m, np.random.default_rng(1))
    assert np.isfinite(out).all() and out.dtype == np.float32
    assert not np.array_equal(out, x)
    np.testing.assert_array_equal(out[~m], x[~m])  # background untouched
    if name != "noise":  # re-standardised to the head's mean and std
        assert out[m].mean() == pytest.approx(x[m].mean(), abs=1e-4)
        assert out[m].std() == pytest.approx(x[m].std(), rel=1e-3)


@pytest.mark.parametrize(
    "coefs, corner, centre",
    [
        # Hand-computed: 1 + c_x * x at x = -1 (first column) and x = 0 (centre).
        ([0, 0, 0.2, 0, 0, 0, 0, 0, 0], 0.8, 1.0),
        # x^2 term: 1 + 0.3 at the edges, 1 at the centre.
        ([0, 0, 0, 0, 0, 0.3, 0, 0, 0], 1.3, 1.0),
        # Clipped at 0.1 so it stays positive.
        ([0, 0, 2.0, 0, 0, 0, 0, 0, 0], 0.1, 1.0),
    ],
)
def test_bias_polynomial_values(coefs, corner, centre):
    f = bias_polynomial((3, 5, 5), np.array(coefs))
    assert f[1, 2, 0] == pytest.approx(corner)
    assert f[1, 2, 2] == pytest.approx(centre)


def test_gamma_is_monotone_inside_the_head():
    x, _ = _head()
    m = head_mask(x)
    out = apply_gamma(x, m, 0.5)
    order = np.argsort(x[m], kind="stable")
    assert np.all(np.diff(out[m][order]) >= -1e-5)


@pytest.mark.parametrize("sigma_mm", [0.5, 1.0, 2.0])
def test_blur_respects_in_plane_spacing(sigma_mm):
    # A single bright voxel: its blur spreads sigma_mm / spacing voxels along each axis,
    # so along x (0.5 mm) twice as many voxels as along y (1 mm); nothing along z.
    x = np.zeros((5, 41, 41), np.float32)
    x[2, 20, 20] = 1.0
    out = blur_in_plane(x, sigma_mm, ANISO)
    ys = np.arange(41) - 20
    sy = np.sqrt((out[2, :, 20] / out[2, :, 20].sum() * ys**2).sum())
    sx = np.sqrt((out[2, 20, :] / out[2, 20, :].sum() * ys**2).sum())
    assert sy == pytest.approx(sigma_mm / ANISO[1], rel=0.1)
    assert sx == pytest.approx(sigma_mm / ANISO[2], rel=0.1)
    assert out[1].max() == 0.0 and out[3].max() == 0.0
    assert out.sum() == pytest.approx(1.0, rel=1e-4)


@pytest.mark.parametrize("depth, factor", [(8, 2.0), (9, 3.0), (20, 2.5), (3, 1.2)])
def test_thicken_slices_keeps_shape_and_mean(depth, factor):
    rng = np.random.default_rng(depth)
    x = rng.standard_normal((depth, 4, 5)).astype(np.float32)
    out = thicken_slices(x, factor)
    assert out.shape == x.shape and np.isfinite(out).all()
    # A linear ramp along z survives (linear down / up sampling preserves it inside).
    ramp = np.broadcast_to(np.arange(depth, dtype=np.float32)[:, None, None], x.shape).copy()
    back = thicken_slices(ramp, factor)
    assert np.abs(back - ramp)[1:-1].max() <= 0.5 * factor + 1e-5
    if round(depth / factor) < depth:
        assert out.std(axis=0).mean() < x.std(axis=0).mean()  # detail along z lost


def test_rotation_matrix_axes():
    r = rotation_matrix((90.0, 0.0, 0.0))  # in-plane: y -> x
    np.testing.assert_allclose(r @ [0, 1, 0], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(r @ [1, 0, 0], [1, 0, 0], atol=1e-12)


def test_rotation_respects_anisotropic_spacing():
    # 90 degrees in-plane on x-spacing half of y-spacing: a point 4 voxels along y
    # (4 mm) lands 8 voxels along x (4 mm): distances are kept in mm, not in voxels.
    m = pull_matrix((90.0, 0.0, 0.0), 1.0, ANISO)
    src = m @ np.array([0.0, 0.0, 8.0])  # output offset 8 voxels along x
    np.testing.assert_allclose(np.abs(src), [0, 4.0, 0], atol=1e-9)
    # Scaling by 2 samples half as far: every offset halves, whatever the spacing.
    np.testing.assert_allclose(pull_matrix((0, 0, 0), 2.0, ANISO), np.eye(3) * 0.5)


@pytest.mark.parametrize("angles", [(10.0, 0.0, 0.0), (-8.0, 3.0, -3.0), (0.0, 0.0, 2.0)])
@pytest.mark.parametrize("scale", [1.0, 0.9, 1.1])
@pytest.mark.parametrize("spacing", [ANISO, (1.0, 1.0, 1.0)])
def test_warp_keeps_labels_binary_and_aligned(angles, scale, spacing):
    x, lab = _head()
    out = warp(x, angles, scale, spacing)
    wl = warp(lab, angles, scale, spacing, label=True)
    assert out.shape == x.shape and wl.shape == lab.shape and wl.dtype == lab.dtype
    assert np.isfinite(out).all()
    assert set(np.unique(wl)) <= {0, 1} and wl.sum() > 0
    # Aligned: the warped label sits on the bright warped blob.
    assert out[wl == 1].mean() > 1.5
    assert out[wl == 0].mean() < 0.5
    mask = warp(lab.astype(bool), angles, scale, spacing, label=True)
    assert mask.dtype == np.bool_ and np.array_equal(mask, wl == 1)


def test_warp_label_volume_follows_scale_cubed():
    lab = np.zeros((21, 41, 41), np.uint8)
    lab[5:16, 10:31, 10:31] = 1
    bigger = warp(lab, (0, 0, 0), 1.1, ANISO, label=True)
    assert bigger.sum() / lab.sum() == pytest.approx(1.1**3, rel=0.08)


def _sample(seed=0):
    x, lab = _head((8, 30, 26), seed)
    ct = np.where(head_mask(x), 0.3, -2.0).astype(np.float32)
    vm = lab.astype(np.int32) * 37
    return np.stack([x, ct]), (lab, vm)


def _all_on(**kw) -> AugmentConfig:
    p = {f"{k}_p": 1.0 for k in ("bias", "gamma", "noise", "blur", "zres", "rotate", "scale")}
    return AugmentConfig(enabled=True, **{**p, **kw})


def test_pipeline_is_reproducible_by_seed_and_keeps_shapes():
    img, labels = _sample()
    a = augment_sample(img, labels, ANISO, _all_on(), np.random.default_rng(5))
    b = augment_sample(img, labels, ANISO, _all_on(), np.random.default_rng(5))
    c = augment_sample(img, labels, ANISO, _all_on(), np.random.default_rng(6))
    np.testing.assert_array_equal(a[0], b[0])
    assert all(np.array_equal(p, q) for p, q in zip(a[1], b[1], strict=True))
    assert not np.array_equal(a[0], c[0])
    out, (lab, vm) = a
    assert out.shape == img.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert lab.shape == labels[0].shape and set(np.unique(lab)) <= {0, 1}
    assert set(np.unique(vm)) <= {0, 37} and np.array_equal(vm > 0, lab > 0)


def test_pipeline_gives_ct_no_bias_or_gamma():
    img, labels = _sample()
    cfg = _all_on(noise_p=0.0, blur_p=0.0, zres_p=0.0, rotate_p=0.0, scale_p=0.0)
    out, _ = augment_sample(img, labels, ANISO, cfg, np.random.default_rng(0))
    np.testing.assert_array_equal(out[1], img[1])
    assert not np.array_equal(out[0], img[0])


def test_disabled_pipeline_is_a_no_op_and_draws_nothing():
    img, labels = _sample()
    rng = np.random.default_rng(3)
    out, labs = augment_sample(img, labels, ANISO, AugmentConfig(), rng)
    assert out is img and labs[0] is labels[0]
    assert rng.random() == np.random.default_rng(3).random()


@pytest.mark.parametrize(
    "field, value",
    [("bias_p", 1.5), ("noise_max_std", -0.1), ("zres_max_factor", 0.5), ("scale_max", 0.6),
     ("rotate_max_deg", (10.0, 3.0)), ("rotate_max_deg", (90.0, 0.0, 0.0))],
)  # fmt: skip
def test_config_rejects_nonsense(field, value):
    with pytest.raises(ValueError, match=field.split("_")[0]):
        AugmentConfig(**{field: value}).validate()
