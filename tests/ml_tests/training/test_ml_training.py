from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ml.inference import EnsemblePredictor
from ml.inference.sliding import head_bbox, predict_deepmedic
from ml.losses import deepmedic_loss
from ml.networks import build
from ml.networks.checkpoint import load_checkpoint, sha256_file
from ml.training import (
    DeepMedicTrainConfig,
    EnsembleTrainConfig,
    TrainingCancelled,
    UNetTrainConfig,
    load_case,
    train_ensemble,
    train_network,
)
from ml.training.data import sample_head_window, sample_segment, sample_slab
from ml.training.ensemble import calibrate, calibration_reserve_s
from ml.training.strategies import deepmedic_batch, deepmedic_plan, unet_plan
from ml.training.trainer import next_step_fits
from tests.ml_tests.ml_core_helpers import make_prepared_study, make_studies

torch.set_num_threads(2)
SHAPE = (10, 18, 18)  # small: the suite must stay fast on two shared cores


def small_config(**kwargs) -> EnsembleTrainConfig:
    return EnsembleTrainConfig(
        preset="lite",
        seed=kwargs.pop("seed", 3),
        unet=UNetTrainConfig(epochs=kwargs.pop("unet_epochs", 2), steps_per_epoch=2),
        deepmedic=DeepMedicTrainConfig(
            epochs=kwargs.pop("dm_epochs", 1),
            batch_size=4,
            segments_per_epoch=8,
            segment_dhw=(6, 12, 12),
            loss_margin_dhw=(1, 2, 2),
        ),
        **kwargs,
    )


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("studies")
    return (
        make_studies(root / "train", 3, seed=0, shape=SHAPE),
        make_studies(root / "val", 1, seed=50, shape=SHAPE),
    )


@pytest.mark.slow
def test_train_ensemble_writes_self_describing_model_dir(studies, tmp_path):
    train, val = studies
    events = []
    manifest = train_ensemble(
        small_config(), train_dirs=train, val_dirs=val, out_dir=tmp_path, progress=events.append
    )
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    for arch in ("unet", "deepmedic"):
        entry = manifest["files"][arch]
        assert entry["sha256"] == sha256_file(tmp_path / entry["path"])
        ckpt = load_checkpoint(tmp_path / entry["path"], expected_sha256=entry["sha256"])
        for key in (
            "arch",
            "class_name",
            "preset",
            "net_kwargs",
            "config",
            "state_dict",
            "optimizer",
            "epoch",
            "metrics",
            "train_case_ids",
            "val_case_ids",
            "seed",
        ):
            assert key in ckpt
        assert ckpt["arch"] == arch and ckpt["train_case_ids"] == ["case000", "case001", "case002"]
        assert (tmp_path / f"{arch}.last.pt").exists()
    assert manifest["val_case_ids"] == ["case050"]
    assert not list(tmp_path.glob("*.tmp"))
    stages = {e["stage"] for e in events}
    assert stages == {"unet", "deepmedic", "validate", "calibrate"}
    assert events[-1]["stage"] == "calibrate" and "validation lesions" in events[-1]["message"]
    # The operating point is calibrated on the validation case and drives the predictor.
    calibration = manifest["calibration"]
    chosen = [row for row in calibration["table"] if row["chosen"]]
    assert len(chosen) == 1 and calibration["val_case_ids"] == ["case050"]
    for key in ("threshold", "peak_threshold", "unet_weight"):
        assert manifest["inference"][key] == calibration["rule"][key] == chosen[0][key]
    predictor = EnsemblePredictor.from_dir(tmp_path)
    assert predictor.rule.to_dict() == calibration["rule"]
    # The maps kept from the best epochs' validation are those of the saved weights:
    # recomputing them from the checkpoints gives the same table.
    cfg = small_config()
    _, again = calibrate(cfg, [load_case(d) for d in val], {}, tmp_path)
    assert again["table"] == calibration["table"]
    for e in events[:-1]:
        assert {"stage", "epoch", "epochs", "step", "steps", "loss", "val"} <= e.keys()
        assert math.isfinite(e["loss"])
    val_events = [e for e in events if e["stage"] == "validate"]
    assert len(val_events) == 3 and "dsc" in val_events[0]["val"]
    assert EnsembleTrainConfig.from_dict(manifest["config"]) == small_config()


def test_config_json_round_trip_and_validation(tmp_path):
    cfg = small_config(max_minutes=1.5)
    path = tmp_path / "cfg.json"
    path.write_text(cfg.to_json())
    assert EnsembleTrainConfig.from_json(path) == cfg
    assert EnsembleTrainConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError):
        EnsembleTrainConfig.from_dict({"unet": {"loss": "focal"}}).validate()
    with pytest.raises(ValueError):
        EnsembleTrainConfig.from_dict({"learning_rate": 1})
    with pytest.raises(ValueError):
        EnsembleTrainConfig(
            deepmedic=DeepMedicTrainConfig(segment_dhw=(4, 8, 8), loss_margin_dhw=(2, 2, 2))
        ).validate()


@pytest.mark.parametrize(
    ("grid", "top", "expect"),
    [
        # paper: the dataclass defaults (docs/METHOD.md values) untouched.
        ("paper", {}, {"preset": "paper", "unet.batch_size": 1, "deepmedic.out_depth": 4}),
        # lite: the CPU recipe (two slabs a step, 12 DeepMedic output slices).
        (
            "lite",
            {},
            {
                "preset": "lite",
                "unet.batch_size": 2,
                "deepmedic.out_depth": 20,
                "unet_time_share": 0.75,
            },
        ),
        # tiny grids use the lite networks.
        (
            "tiny",
            {"seed": 7},
            {"preset": "lite", "seed": 7, "unet.epochs": 300, "unet_time_share": 0.5},
        ),
        # Section overrides merge into the recipe instead of replacing it.
        (
            "lite",
            {"max_minutes": 10.0, "unet_time_share": 0.6, "unet": {"epochs": 3}},
            {
                "max_minutes": 10.0,
                "unet_time_share": 0.6,
                "unet.epochs": 3,
                "unet.batch_size": 2,
                "unet.slab_depth": 8,
            },
        ),
    ],
)
def test_config_for_grid(grid, top, expect):
    cfg = EnsembleTrainConfig.for_grid(grid, **top)
    cfg.validate()
    for key, value in expect.items():
        obj = cfg
        for part in key.split("."):
            obj = getattr(obj, part)
        assert obj == value, key


def test_config_for_unknown_grid_or_field_fails():
    with pytest.raises(ValueError, match="unknown grid preset"):
        EnsembleTrainConfig.for_grid("huge")
    with pytest.raises(ValueError, match="unknown UNetTrainConfig fields"):
        EnsembleTrainConfig.for_grid("lite", unet={"batch": 4})


def test_same_seed_same_weights_and_resume_matches(studies, tmp_path):
    train, _ = studies
    cases = [load_case(d) for d in train]
    cfg = small_config(unet_epochs=2)
    a = train_network(
        "unet", cfg, train_cases=cases, val_cases=[], out_path=tmp_path / "a" / "unet.pt"
    )
    b = train_network(
        "unet", cfg, train_cases=cases, val_cases=[], out_path=tmp_path / "b" / "unet.pt"
    )
    wa = load_checkpoint(tmp_path / "a" / "unet.last.pt")["state_dict"]
    wb = load_checkpoint(tmp_path / "b" / "unet.last.pt")["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a["history"][-1]["loss"] == b["history"][-1]["loss"]
    # One epoch, then resume to two: same weights as two epochs in one go.
    train_network(
        "unet",
        small_config(unet_epochs=1),
        train_cases=cases,
        val_cases=[],
        out_path=tmp_path / "c" / "unet.pt",
    )
    c = train_network(
        "unet",
        cfg,
        train_cases=cases,
        val_cases=[],
        out_path=tmp_path / "c" / "unet.pt",
        resume=True,
    )
    wc = load_checkpoint(tmp_path / "c" / "unet.last.pt")["state_dict"]
    assert c["epochs_run"] == 2
    assert all(torch.allclose(wa[k], wc[k]) for k in wa)


def test_cancel_raises_and_time_budget_stops(studies, tmp_path):
    train, val = studies
    cases = [load_case(d) for d in train]
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(TrainingCancelled):
        train_ensemble(
            small_config(), train_dirs=train, val_dirs=val, out_dir=tmp_path / "x", should_stop=stop
        )
    res = train_network(
        "deepmedic",
        small_config(dm_epochs=50),
        train_cases=cases,
        val_cases=[],
        out_path=tmp_path / "dm.pt",
        max_minutes=1e-6,
    )
    assert res["stopped"] == "time_budget" and res["epochs_run"] == 1
    assert (tmp_path / "dm.pt").exists()


def test_warm_start(studies, tmp_path):
    train, _ = studies
    cases = [load_case(d) for d in train]
    train_network(
        "unet",
        small_config(unet_epochs=1),
        train_cases=cases,
        val_cases=[],
        out_path=tmp_path / "unet.pt",
    )
    res = train_network(
        "unet",
        small_config(unet_epochs=1, seed=9),
        train_cases=cases,
        val_cases=[],
        out_path=tmp_path / "w" / "unet.pt",
        warm_start=tmp_path / "unet.pt",
    )
    assert res["epochs_run"] == 1
    with pytest.raises(ValueError):
        train_network(
            "deepmedic",
            small_config(),
            train_cases=cases,
            val_cases=[],
            out_path=tmp_path / "d.pt",
            warm_start=tmp_path / "unet.pt",
        )


def test_plans_respect_tumour_fraction(studies):
    train, _ = studies
    cases = [load_case(d) for d in train]
    rng = np.random.default_rng(0)
    cfg = UNetTrainConfig(steps_per_epoch=10, tumour_fraction=0.7)
    plan = [item for batch in unet_plan(cases, cfg, rng) for item in batch]
    assert len(plan) == 10 and sum(want for _, want in plan) == 7
    slabs = [sample_slab(cases[ci], 8, want_tumour=want, rng=rng) for ci, want in plan]
    assert sum(bool(gt.any()) for _, gt, _ in slabs) >= 7
    dm = DeepMedicTrainConfig(segments_per_epoch=12, batch_size=5)
    batches = deepmedic_plan(cases, dm, rng)
    assert [len(b) for b in batches] == [5, 5, 2]
    assert sum(fg for b in batches for _, fg in b) == 6


def test_thin_case_and_segment_padding(tmp_path):
    case = load_case(make_prepared_study(tmp_path / "thin", seed=1, shape=(3, 20, 24), n_lesions=1))
    rng = np.random.default_rng(1)
    img, gt, vm = sample_slab(case, 8, want_tumour=True, rng=rng)
    assert img.shape == (2, 8, *case.gt.shape[1:]) and gt[:3].any() and not gt[3:].any()
    assert vm.max() == case.volume_map.max()
    seg, sgt = sample_segment(case, (5, 9, 9), foreground=True, rng=rng)
    assert seg.shape == (2, 5, 9, 9) and sgt[2, 4, 4] == 1


def test_case_without_ground_truth_is_rejected(tmp_path):
    with pytest.raises(ValueError):
        load_case(make_prepared_study(tmp_path / "nogt", seed=1, with_gt=False))


def test_head_window_is_the_inference_context(tmp_path):
    """A head window spans the head box in-plane, its loss mask covers exactly
    ``out_depth`` output slices, and in eval mode the network's output on those
    slices equals whole-study inference (same context, same zero padding)."""
    study = make_prepared_study(tmp_path / "deep", seed=4, shape=(30, 20, 24), n_lesions=2)
    case = load_case(study)
    y0, x0, y1, x1 = head_bbox(np.load(study / "model_input.npy"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = build("deepmedic", "lite").eval()
    halo = net.z_halo
    full = predict_deepmedic(net, case.image, amp=False)
    rng = np.random.default_rng(0)
    for want in (True, True, False, False, False):
        img, gt, mask = sample_head_window(case, 3, halo, want_tumour=want, rng=rng)
        assert img.shape[-2:] == gt.shape[-2:] == (y1 - y0, x1 - x0)
        out = np.flatnonzero(mask.any(axis=(1, 2)))
        assert len(out) == 3 and mask[out].all() and mask.sum() == 3 * gt[0].size
        assert img.shape[1] <= 3 + 2 * halo
        if want:
            assert (gt & mask).any()
        a = next(
            a
            for a in range(case.gt.shape[0] - img.shape[1] + 1)
            if np.array_equal(case.image[:, a : a + img.shape[1]], img)
        )
        # Full context on each side, or the volume's end (as at inference).
        assert a == 0 or out[0] >= halo
        assert a + img.shape[1] == case.gt.shape[0] or img.shape[1] - 1 - out[-1] >= halo
        with torch.no_grad():
            prob = torch.softmax(net(torch.from_numpy(np.ascontiguousarray(img[None]))), 1)
        np.testing.assert_allclose(prob[0, 1].numpy()[out], full[a + out], atol=1e-5)


def test_deepmedic_loss_uses_only_masked_voxels_and_balances_classes(studies):
    train, _ = studies
    cases = [load_case(d) for d in train]
    cfg = DeepMedicTrainConfig(batch_size=2, out_depth=2)
    rng = np.random.default_rng(0)
    x, g, m = deepmedic_batch(cases, [(0, True), (1, False)], cfg, rng, "cpu", halo=2)
    assert x.shape[:2] == (2, 2) and m.shape == g.shape and bool(m.any(dim=(1, 2, 3)).all())
    logits = torch.randn(2, 2, *g.shape[1:], requires_grad=True)
    loss = deepmedic_loss(logits, g, m, 3.0)
    loss.backward()
    grad = logits.grad.abs().sum(dim=1)
    assert float(grad[~m].sum()) == 0.0 and float(grad[m].sum()) > 0
    # Balance: (mean CE over tumour + 3 x mean CE over background) / 4.
    ce = torch.nn.functional.cross_entropy(logits.detach(), g, reduction="none")
    fg, bg = m & (g == 1), m & (g == 0)
    assert fg.any()
    expected = (ce[fg].mean() + 3 * ce[bg].mean()) / 4
    assert torch.allclose(loss.detach(), expected)
    plain = deepmedic_loss(logits.detach(), g, m, None)
    assert torch.allclose(plain, ce[m].mean())


@pytest.mark.parametrize(("prior", "bias"), [(0.01, math.log(0.01 / 0.99)), (0.5, 0.0)])
def test_unet_init_prior_sets_the_output_bias(studies, tmp_path, prior, bias):
    train, _ = studies
    cfg = small_config(unet_epochs=1)
    cfg.unet.init_prior = prior
    cfg.unet.lr = 1e-12  # one step that leaves the weights where they started
    train_network(
        "unet",
        cfg,
        train_cases=[load_case(d) for d in train],
        val_cases=[],
        out_path=tmp_path / "u.pt",
    )
    head_bias = load_checkpoint(tmp_path / "u.pt")["state_dict"]["head.bias"]
    assert float(head_bias[0]) == pytest.approx(bias, abs=1e-6)
    with pytest.raises(ValueError, match="init_prior"):
        UNetTrainConfig(init_prior=1.0).validate()


# elapsed s, recent step times s, last validation s, budget s -> one more step fits
@pytest.mark.parametrize(
    "elapsed,steps,val,budget,fits",
    [
        (500.0, [11.0, 15.0, 12.0], 60.0, 575.0, True),  # 500 + 15 + 60 = 575
        (500.0, [11.0, 15.0, 12.0], 60.0, 574.9, False),  # the slowest step counts, not the last
        (500.0, [12.0], 60.0, 574.9, True),
        (0.0, [], 0.0, 0.0, True),  # nothing measured yet
        (599.0, [], 2.0, 600.0, False),
    ],
)
def test_next_step_fits_prices_the_slowest_recent_step(elapsed, steps, val, budget, fits):
    assert next_step_fits(elapsed, steps, val, budget) is fits


@pytest.mark.parametrize(
    ("calibrate_on", "n_val", "seconds"), [(True, 4, 8.0), (True, 0, 0.0), (False, 4, 0.0)]
)
def test_calibration_time_is_kept_back_from_the_budget(calibrate_on, n_val, seconds):
    cfg = EnsembleTrainConfig.for_grid("lite", calibrate=calibrate_on)
    assert calibration_reserve_s(cfg, n_val) == seconds


@pytest.mark.parametrize(
    "grid, top, enabled",
    [("lite", {}, True), ("paper", {}, False), ("tiny", {}, False),
     ("paper", {"augment": {"enabled": True}}, True),
     ("lite", {"augment": {"enabled": False}}, False)],
)  # fmt: skip
def test_augmentation_on_in_lite_off_in_paper_unless_set(grid, top, enabled):
    cfg = EnsembleTrainConfig.for_grid(grid, **top)
    cfg.validate()
    assert cfg.augment.enabled is enabled
    assert EnsembleTrainConfig.from_dict(json.loads(cfg.to_json())).augment == cfg.augment


@pytest.mark.parametrize("arch", ["unet", "deepmedic"])
def test_batches_are_augmented_only_when_enabled(studies, arch):
    from ml.training.strategies import strategy_for

    cases = [load_case(d) for d in studies[0]]
    cfg = EnsembleTrainConfig.for_grid("tiny", deepmedic={"out_depth": 2})
    net = build(arch, "lite")
    items = [(0, True), (1, True)]

    def batch(aug_on: bool, seed: int):
        cfg.augment.enabled = aug_on
        cfg.augment.rotate_p = cfg.augment.bias_p = 1.0
        return strategy_for(arch, cfg).batch(net, cases, items, np.random.default_rng(seed), "cpu")

    plain, plain2 = batch(False, 0), batch(False, 0)
    aug, aug2, other = batch(True, 0), batch(True, 0), batch(True, 1)
    assert all(torch.equal(a, b) for a, b in zip(plain, plain2, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(aug, aug2, strict=True))
    assert not torch.equal(aug[0], plain[0]) and not torch.equal(aug[0], other[0])
    for a, p in zip(aug, plain, strict=True):
        assert a.shape == p.shape and a.dtype == p.dtype
    assert torch.isfinite(aug[0]).all()
    assert set(torch.unique(aug[1]).tolist()) <= {0, 1}
