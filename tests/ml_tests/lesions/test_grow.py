"""Click to add: growing a lesion from a click in a probability map or the MR."""

from __future__ import annotations

import numpy as np
import pytest

from ml.lesions.grow import GrowConfig, ball_box, grow_from_click, run_lengths

SPACING = (2.0, 1.0, 1.0)  # anisotropic, like the lite grid
SHAPE = (24, 48, 48)
CENTRE = (12, 24, 24)


def _ball(radius_mm, centre=CENTRE, spacing=SPACING, shape=SHAPE):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, spacing, strict=True))
    return d2 <= radius_mm**2


def _brain(seed=0):
    """Brain-like background (WM 880 / GM 620 halves, noise sigma 18)."""
    rng = np.random.default_rng(seed)
    img = np.full(SHAPE, 880.0, dtype=np.float32)
    img[:, :, :20] = 620.0
    return img + rng.normal(0, 18, SHAPE).astype(np.float32)


def _with_lesion(truth, value=1450.0, core=None):
    img = _brain()
    img[truth] = value
    if core is not None:
        img[core] = 360.0
    return img


def _dice(a, b):
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def _full(result, shape=SHAPE):
    out = np.zeros(shape, dtype=bool)
    z0, y0, x0, z1, y1, x1 = result.bbox
    out[z0:z1, y0:y1, x0:x1] = result.mask
    return out


SPHERE_6 = _ball(6.0)
NECROTIC = _ball(8.0)
ONE_VOXEL = np.zeros(SHAPE, dtype=bool)
ONE_VOXEL[CENTRE] = True

IMAGE_CASES = [
    # name, truth, image, click (z, y, x), wanted Dice
    ("sphere r=6 mm, click at centre", SPHERE_6, _with_lesion(SPHERE_6), CENTRE, 0.95),
    ("sphere r=6 mm, click 3 mm off centre", SPHERE_6, _with_lesion(SPHERE_6), (12, 27, 24), 0.95),
    # a click in the dark core finds the enhancing rim; the core is filled in
    (
        "necrotic r=8 mm, click in the core",
        NECROTIC,
        _with_lesion(NECROTIC, core=_ball(4.0)),
        CENTRE,
        0.95,
    ),
    ("one voxel", ONE_VOXEL, _with_lesion(ONE_VOXEL), CENTRE, 1.0),
]


@pytest.mark.parametrize(
    "name,truth,image,click,wanted", IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES]
)
def test_image_growing_finds_the_lesion(name, truth, image, click, wanted):
    result = grow_from_click(seed_zyx=click, spacing_mm=SPACING, image=image)
    assert result is not None and result.method == "image"
    assert _dice(_full(result), truth) >= wanted
    assert 880 < result.threshold < 1450  # the half maximum between brain and lesion


def test_growing_is_clipped_to_the_radius():
    big = _ball(15.0)
    result = grow_from_click(
        seed_zyx=CENTRE, spacing_mm=SPACING, radius_mm=6.0, image=_with_lesion(big)
    )
    assert np.array_equal(_full(result), SPHERE_6)  # exactly the 6 mm ball of the click


@pytest.mark.parametrize(
    "name,image",
    [
        ("brain only", _brain()),
        ("flat zeros", np.zeros(SHAPE, dtype=np.float32)),
        ("a dark spot", _with_lesion(SPHERE_6, value=300.0)),
    ],
)
def test_nothing_grows_without_an_enhancing_lesion(name, image):
    assert grow_from_click(seed_zyx=CENTRE, spacing_mm=SPACING, image=image) is None


def _prob_blob(peak):
    grids = np.ogrid[tuple(slice(0, n) for n in SHAPE)]
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, CENTRE, SPACING, strict=True))
    return (peak * np.exp(-d2 / (2 * 4.0**2))).astype(np.float32)


@pytest.mark.parametrize(
    "peak,method",
    [
        (0.9, "probability"),  # threshold 0.45: the Gaussian's half maximum
        (0.4, "probability"),  # a sub-threshold bump the model missed: threshold 0.2
        (0.15, "image"),  # below prob_floor: the MR decides
    ],
)
def test_probability_first_then_image(peak, method):
    prob = _prob_blob(peak)
    result = grow_from_click(
        seed_zyx=CENTRE, spacing_mm=SPACING, prob=prob, image=_with_lesion(SPHERE_6)
    )
    assert result.method == method
    if method == "probability":
        # p >= peak / 2 <=> d <= 4 mm * sqrt(2 ln 2): the Gaussian's half-maximum ball
        assert result.threshold == pytest.approx(max(peak / 2, 0.1))
        assert np.array_equal(_full(result), _ball(4.0 * np.sqrt(2 * np.log(2))))


def test_existing_lesions_are_excluded():
    image = _with_lesion(SPHERE_6)
    drawn = np.zeros(SHAPE, dtype=np.uint16)
    drawn[:, :, :24] = 7 * SPHERE_6[:, :, :24]  # half of it is already lesion 7
    result = grow_from_click(seed_zyx=(12, 24, 27), spacing_mm=SPACING, image=image, exclude=drawn)
    grown = _full(result)
    assert not np.any(grown & (drawn > 0))
    assert np.array_equal(grown, SPHERE_6 & (drawn == 0))


def test_a_click_on_a_drawn_lesion_grows_nothing():
    drawn = (_ball(10.0) * 3).astype(np.uint16)
    image = _with_lesion(SPHERE_6)
    assert grow_from_click(seed_zyx=CENTRE, spacing_mm=SPACING, image=image, exclude=drawn) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed_zyx": (24, 0, 0)},  # z out of range
        {"seed_zyx": (-1, 0, 0)},
        {"seed_zyx": (1, 2)},
        {"radius_mm": 0.0},
        {"radius_mm": float("nan")},
        {"spacing_mm": (2.0, 0.0, 1.0)},
    ],
)
def test_bad_input_raises(kwargs):
    args = {"seed_zyx": CENTRE, "spacing_mm": SPACING, "image": _brain()} | kwargs
    with pytest.raises(ValueError):
        grow_from_click(**args)


def test_needs_a_source_and_sane_config():
    with pytest.raises(ValueError):
        grow_from_click(seed_zyx=CENTRE, spacing_mm=SPACING)
    with pytest.raises(ValueError):
        GrowConfig(image_fraction=1.0)


def test_ball_box_is_clipped_at_the_volume_edge():
    box, ball = ball_box((0, 0, 47), SHAPE, SPACING, 4.0)
    assert box == (slice(0, 3), slice(0, 5), slice(43, 48))
    assert ball.shape == (3, 5, 5) and ball[0, 0, 4] and not ball[2, 4, 4]
    assert ball.sum() == _ball(4.0, centre=(0, 0, 47)).sum()


@pytest.mark.parametrize(
    "flat,runs",
    [
        ([], []),
        ([0, 0, 1, 1, 1, 0], [2, 3, 1]),
        ([1, 1, 0], [0, 2, 1]),
        ([1], [0, 1]),
        ([0, 0, 0, 0], [4]),
    ],
)
def test_run_lengths(flat, runs):
    assert (
        run_lengths(np.array(flat, dtype=bool).reshape(1, 1, -1) if flat else np.zeros((0, 0, 0)))
        == runs
    )
