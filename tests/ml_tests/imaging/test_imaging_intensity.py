"""Intensity pre-processing: brain window, slice-wise CLAHE, z-scoring inside the head."""

from __future__ import annotations

import numpy as np

from ml.imaging.intensity import (
    ct_brain_window,
    head_mask_from_ct,
    model_input,
    mr_equalise,
    zscore,
)


def _head_phantom(shape: tuple[int, int, int] = (6, 64, 64)) -> tuple[np.ndarray, np.ndarray]:
    d, h, w = shape
    zz, yy, xx = np.meshgrid(np.arange(d), np.arange(h), np.arange(w), indexing="ij")
    r = np.sqrt(((yy - h / 2) / (h * 0.4)) ** 2 + ((xx - w / 2) / (w * 0.35)) ** 2)
    ct = np.full(shape, -1000.0, dtype=np.float32)
    ct[r < 1.0] = 1200.0  # skull
    ct[r < 0.9] = 35.0 + 5 * np.sin(xx[r < 0.9] / 3.0)  # brain
    rng = np.random.default_rng(0)
    mr = np.where(r < 0.9, 600 + 200 * (xx / w), 0).astype(np.float32) + rng.normal(
        0, 10, shape
    ).astype(np.float32)
    return ct, np.abs(mr)


def test_brain_window_clips_to_level_and_width() -> None:
    out = ct_brain_window(np.array([-1000.0, 0.0, 40.0, 80.0, 1500.0]))
    np.testing.assert_array_equal(out, [0.0, 0.0, 40.0, 80.0, 80.0])
    assert out.dtype == np.float32


def test_head_mask_fills_the_skull_and_drops_specks() -> None:
    ct, _ = _head_phantom()
    ct[:, 2, 2] = 500.0  # a speck outside the head (table, noise)
    ct[:, 32, 32] = -1000.0  # air inside the head (a sinus) is still head
    head = head_mask_from_ct(ct)
    assert head[:, 32, 32].all() and not head[:, 2, 2].any()
    coarse = head_mask_from_ct(ct, spacing_mm=(2.0, 0.6, 0.6))
    assert coarse.shape == head.shape
    assert (coarse != head).mean() < 0.06  # only the rim, on this 64x64 phantom


def test_zscore_uses_only_the_mask() -> None:
    vol = np.concatenate([np.full(100, 1000.0), np.random.default_rng(1).normal(5, 2, 900)])
    mask = np.zeros(1000, dtype=bool)
    mask[100:] = True
    z = zscore(vol, mask)
    assert abs(z[mask].mean()) < 1e-5 and abs(z[mask].std() - 1) < 1e-5
    assert z.dtype == np.float32


def test_clahe_is_slice_by_slice_in_unit_range_and_zero_outside(monkeypatch) -> None:
    import ml.imaging.intensity as intensity

    ct, mr = _head_phantom()
    head = head_mask_from_ct(ct)
    calls: list[int] = []
    real = intensity.equalize_adapthist

    def spy(image: np.ndarray, **kwargs: object) -> np.ndarray:
        calls.append(image.ndim)
        return real(image, **kwargs)

    monkeypatch.setattr(intensity, "equalize_adapthist", spy)
    eq = mr_equalise(mr, head)
    assert calls == [2] * int(head.any(axis=(1, 2)).sum())  # one 2-D call per head slice
    assert eq.min() >= 0.0 and eq.max() <= 1.0
    assert np.all(eq[~head] == 0.0)


def test_model_input_channels() -> None:
    ct, mr = _head_phantom()
    head = head_mask_from_ct(ct)
    x = model_input(mr, ct, head)
    assert x.shape == (2, *ct.shape) and x.dtype == np.float32
    for c in range(2):
        assert abs(float(x[c][head].mean())) < 1e-4
        assert abs(float(x[c][head].std()) - 1.0) < 1e-3
