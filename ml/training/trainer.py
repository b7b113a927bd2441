"""One trainer for both networks: sampling, optimisation, validation, checkpoints.

The U-Net learns from random slabs of ``slab_depth`` slices at full in-plane
size (at least ``tumour_fraction`` of each epoch's slabs contain tumour) with a
Dice or volume-aware Dice loss; DeepMedic learns from head windows (the
whole in-plane head box, a few output slices plus ``z_halo`` slices of context)
with a class-balanced cross-entropy on the output slices only, so it trains on
exactly the context whole-study inference gives it (``DeepMedicTrainConfig``). Both use RMSprop, validate after every
epoch with the same whole-study inference as the predictor, and keep the
weights with the best mean validation DSC.
"""

from __future__ import annotations

import copy
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ml.inference.sliding import predict_deepmedic, predict_unet
from ml.losses import build_loss, deepmedic_loss
from ml.metrics import aggregate, evaluate_case
from ml.networks import build, network_kwargs
from ml.networks.checkpoint import load_checkpoint, save_checkpoint, utc_now
from ml.training.config import DeepMedicTrainConfig, EnsembleTrainConfig, UNetTrainConfig
from ml.training.data import Case, sample_head_window, sample_segment, sample_slab

Progress = Callable[[dict[str, Any]], None]
ShouldStop = Callable[[], bool]

_ARCH_SEED = {"unet": 1, "deepmedic": 2}


class TrainingCancelled(Exception):
    """Raised when ``should_stop()`` returned true between two steps."""


def next_step_fits(
    elapsed_s: float, recent_steps_s: Iterable[float], val_s: float, budget_s: float
) -> bool:
    """Whether one more step and a validation pass still end within ``budget_s``.

    The step is priced at the slowest of the recent ones (a DeepMedic head window
    takes 11-15 s on two cores, so the last one alone under-reserves), the
    validation pass at the last one's duration. Seconds throughout.
    """
    return elapsed_s + max(recent_steps_s, default=0.0) + val_s <= budget_s


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _pad_stack(arrays: Sequence[np.ndarray], n_axes: int = 2) -> np.ndarray:
    """Stack arrays whose last ``n_axes`` axes may differ (head crops), zero padding."""
    lead = arrays[0].shape[: arrays[0].ndim - n_axes]
    size = tuple(max(a.shape[k] for a in arrays) for k in range(-n_axes, 0))
    out = np.zeros((len(arrays), *lead, *size), dtype=arrays[0].dtype)
    for i, a in enumerate(arrays):
        out[(i, ..., *(slice(0, n) for n in a.shape[-n_axes:]))] = a
    return out


def _unet_plan(cases: Sequence[Case], cfg: UNetTrainConfig, rng: np.random.Generator):
    steps = cfg.steps_per_epoch or len(cases)
    n = steps * cfg.batch_size
    tumour_cases = [i for i, c in enumerate(cases) if c.has_tumour]
    n_tumour = math.ceil(cfg.tumour_fraction * n) if tumour_cases else 0
    plan = [(int(rng.choice(tumour_cases)), True) for _ in range(n_tumour)]
    plan += [(int(rng.integers(len(cases))), False) for _ in range(n - n_tumour)]
    order = rng.permutation(n)
    plan = [plan[i] for i in order]
    return [plan[i : i + cfg.batch_size] for i in range(0, n, cfg.batch_size)]


def _deepmedic_plan(cases: Sequence[Case], cfg: DeepMedicTrainConfig, rng: np.random.Generator):
    n = cfg.segments_per_epoch
    tumour_cases = [i for i, c in enumerate(cases) if c.has_tumour]
    n_fg = round(cfg.fg_fraction * n) if tumour_cases else 0
    plan = [(int(rng.choice(tumour_cases)), True) for _ in range(n_fg)]
    plan += [(int(rng.integers(len(cases))), False) for _ in range(n - n_fg)]
    order = rng.permutation(n)
    plan = [plan[i] for i in order]
    return [plan[i : i + cfg.batch_size] for i in range(0, n, cfg.batch_size)]


def _unet_batch(cases, items, cfg: UNetTrainConfig, rng, device):
    imgs, gts, vms = [], [], []
    for ci, want in items:
        img, gt, vm = sample_slab(cases[ci], cfg.slab_depth, want_tumour=want, rng=rng)
        if cfg.flip and rng.random() < 0.5:
            img, gt, vm = img[..., ::-1], gt[..., ::-1], vm[..., ::-1]
        imgs.append(img)
        gts.append(gt[None])
        vms.append(vm[None])
    x = torch.from_numpy(_pad_stack(imgs)).to(device)
    g = torch.from_numpy(_pad_stack(gts).astype(np.float32)).to(device)
    v = torch.from_numpy(_pad_stack(vms).astype(np.float32)).to(device)
    return x, g, v


def _deepmedic_batch(cases, items, cfg: DeepMedicTrainConfig, rng, device, halo: int = 8):
    """(x, g, mask): inputs, labels and the voxels that enter the loss.

    Head windows of different sizes are zero-padded to a common shape; the
    padding is outside ``mask``. For segments, ``mask`` is the interior inside
    ``loss_margin_dhw``.
    """
    imgs, gts, masks = [], [], []
    for ci, fg in items:
        if cfg.sampler == "head":
            img, gt, mask = sample_head_window(
                cases[ci], cfg.out_depth, halo, want_tumour=fg, rng=rng
            )
        else:
            img, gt = sample_segment(cases[ci], cfg.segment_dhw, foreground=fg, rng=rng)
            mask = np.zeros(gt.shape, dtype=bool)
            mask[
                tuple(slice(m, n - m) for m, n in zip(cfg.loss_margin_dhw, gt.shape, strict=True))
            ] = True
        if cfg.flip and rng.random() < 0.5:
            img, gt, mask = img[..., ::-1], gt[..., ::-1], mask[..., ::-1]
        imgs.append(np.ascontiguousarray(img))
        gts.append(np.ascontiguousarray(gt))
        masks.append(np.ascontiguousarray(mask))
    x = torch.from_numpy(_pad_stack(imgs, 3)).to(device)
    g = torch.from_numpy(_pad_stack(gts, 3).astype(np.int64)).to(device)
    m = torch.from_numpy(_pad_stack(masks, 3)).to(device)
    return x, g, m


def validate_network(
    arch: str,
    net: nn.Module,
    cases: Sequence[Case],
    *,
    threshold: float,
    device: torch.device,
    slab_depth: int = 8,
    slab_stride: int = 4,
    tile_depth: int = 64,
    connectivity: int = 26,
    probs_out: list[np.ndarray] | None = None,
) -> dict[str, Any]:
    """Whole-study inference on each validation case, then ``ml.metrics.aggregate``.

    With ``probs_out`` the probability maps are appended to it (for calibration).
    """
    results = []
    for case in cases:
        if arch == "unet":
            prob = predict_unet(
                net, case.image, slab_depth=slab_depth, stride=slab_stride, device=device
            )
        else:
            prob = predict_deepmedic(net, case.image, tile_depth=tile_depth, device=device)
        if probs_out is not None:
            probs_out.append(prob)
        results.append(
            evaluate_case(prob >= threshold, case.gt, case.spacing_mm, connectivity=connectivity)
        )
    agg = aggregate(results)
    return {
        "dsc": agg["dsc"],
        "precision": agg["precision"],
        "recall": agg["recall"],
        "detection_rate": agg["detection_rate"],
        "fp_lesions_per_case": agg["fp_lesions_per_case"],
        "small_pixel_recall": agg["groups"]["small"]["pixel_recall"],
        "large_pixel_recall": agg["groups"]["large"]["pixel_recall"],
    }


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return copy.deepcopy(rng.bit_generator.state)


def train_network(
    arch: str,
    config: EnsembleTrainConfig,
    *,
    train_cases: Sequence[Case],
    val_cases: Sequence[Case],
    out_path: str | Path,
    warm_start: str | Path | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    resume: bool = False,
    max_minutes: float | None = None,
) -> dict[str, Any]:
    """Train one network; writes ``out_path`` (best weights) and ``<stem>.last.pt``.

    Returns a summary: ``epoch`` of the best weights, ``metrics``, ``history``,
    ``sha256`` of ``out_path``, ``stopped`` (``None``, or ``"time_budget"``) and
    ``val_probs``: the best weights' probability maps of the validation cases
    (``None`` when they were not computed in this call, e.g. after a resume).
    """
    if arch not in _ARCH_SEED:
        raise ValueError(f"unknown architecture {arch!r}")
    if not train_cases:
        raise ValueError("no training cases")
    config.validate()
    cfg: UNetTrainConfig | DeepMedicTrainConfig = (
        config.unet if arch == "unet" else config.deepmedic
    )
    budget_min = min((m for m in (cfg.max_minutes, max_minutes) if m is not None), default=None)
    device = resolve_device(config.device)
    use_amp = config.amp and device.type == "cuda"
    out_path = Path(out_path)
    last_path = out_path.with_name(out_path.stem + ".last.pt")
    kwargs = network_kwargs(arch, config.preset)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed * 1000 + _ARCH_SEED[arch])
        net = build(arch, config.preset)
    prior = getattr(cfg, "init_prior", None)
    if prior is not None and warm_start is None:
        with torch.no_grad():
            net.head.bias.fill_(math.log(prior / (1 - prior)))
    if warm_start is not None:
        ws = load_checkpoint(warm_start)
        if ws["arch"] != arch or _norm(ws["net_kwargs"]) != _norm(kwargs):
            raise ValueError(
                f"warm start {warm_start} is a different network ({ws['arch']}, {ws['preset']})"
            )
        net.load_state_dict(ws["state_dict"])
    net.to(device)
    optimizer = torch.optim.RMSprop(net.parameters(), lr=cfg.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    loss_fn = build_loss(cfg.loss, lambda_c=cfg.lambda_c, eps=cfg.eps) if arch == "unet" else None
    rng = np.random.default_rng([config.seed, _ARCH_SEED[arch]])

    start_epoch, history = 0, []
    best_score, best_epoch, best_metrics, best_state = -math.inf, 0, {}, None
    if resume and last_path.exists():
        last = load_checkpoint(last_path)
        if (
            last["arch"] != arch
            or _norm(last["net_kwargs"]) != _norm(kwargs)
            or last["seed"] != config.seed
        ):
            raise ValueError(f"{last_path} holds a different network or seed; cannot resume")
        net.load_state_dict(last["state_dict"])
        optimizer.load_state_dict(last["optimizer"])
        rng.bit_generator.state = last["rng_state"]
        start_epoch, history = last["epoch"], last["history"]
        best_score, best_epoch = last["best_score"], last["best_epoch"]
        best_metrics, best_state = last["best_metrics"], last["best_state"]

    train_ids = [c.case_id for c in train_cases]
    val_ids = [c.case_id for c in val_cases]
    base_payload = {
        "arch": arch,
        "class_name": type(net).__name__,
        "preset": config.preset,
        "net_kwargs": kwargs,
        "config": config.to_dict(),
        "train_case_ids": train_ids,
        "val_case_ids": val_ids,
        "seed": config.seed,
        "torch_version": torch.__version__,
    }
    t_start = time.monotonic()
    stopped = None
    sha = None
    val_seconds = 0.0
    recent_steps: deque[float] = deque(maxlen=5)  # seconds of the last steps
    best_val_probs: list[np.ndarray] | None = None  # this run's best epoch only (not on resume)
    emit = progress or (lambda event: None)

    def out_of_time() -> bool:
        # One more step and a validation pass would end past the budget.
        return budget_min is not None and not next_step_fits(
            time.monotonic() - t_start, recent_steps, val_seconds, 60 * budget_min
        )

    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        # A new epoch only if a step and its validation still fit in the budget.
        if history[start_epoch:] and out_of_time():
            stopped = "time_budget"
            break
        net.train()
        if arch == "unet":
            plan = _unet_plan(train_cases, cfg, rng)
        else:
            plan = _deepmedic_plan(train_cases, cfg, rng)
        losses = []
        for step, items in enumerate(plan, start=1):
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"{arch} stopped at epoch {epoch}, step {step}")
            # Stop when one more step and this epoch's validation would end past
            # the budget.
            if losses and out_of_time():
                stopped = "time_budget"
                break
            t_step = time.monotonic()
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                if arch == "unet":
                    x, g, v = _unet_batch(train_cases, items, cfg, rng, device)
                    prob = torch.sigmoid(net(x).float())
                    loss = loss_fn(prob, g, v)
                else:
                    x, g, m = _deepmedic_batch(
                        train_cases, items, cfg, rng, device, halo=int(net.z_halo)
                    )
                    bg_per_fg = cfg.bg_per_fg if cfg.sampler == "head" else None
                    loss = deepmedic_loss(net(x).float(), g, m, bg_per_fg)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(float(loss.detach()))
            recent_steps.append(time.monotonic() - t_step)
            emit(
                {
                    "stage": arch,
                    "epoch": epoch,
                    "epochs": cfg.epochs,
                    "step": step,
                    "steps": len(plan),
                    "loss": losses[-1],
                    "val": None,
                }
            )
        epoch_loss = float(np.mean(losses)) if losses else float("nan")
        val = None
        if val_cases:
            t_val = time.monotonic()
            val_probs: list[np.ndarray] = []
            val = validate_network(
                arch,
                net,
                val_cases,
                threshold=config.threshold,
                device=device,
                slab_depth=config.unet.slab_depth,
                slab_stride=config.unet.val_stride,
                tile_depth=config.deepmedic.tile_depth,
                connectivity=config.connectivity,
                probs_out=val_probs,
            )
            val_seconds = time.monotonic() - t_val
            emit(
                {
                    "stage": "validate",
                    "net": arch,
                    "epoch": epoch,
                    "epochs": cfg.epochs,
                    "step": len(plan),
                    "steps": len(plan),
                    "loss": epoch_loss,
                    "val": val,
                }
            )
        score = (
            (val["dsc"] if val and val["dsc"] is not None else -1.0) if val_cases else -epoch_loss
        )
        history.append(
            {"epoch": epoch, "loss": epoch_loss, "val": val, "seconds": time.monotonic() - t_start}
        )
        if score > best_score:
            best_score, best_epoch = score, epoch
            best_metrics = {"val": val, "train_loss": epoch_loss}
            best_state = {k: t.detach().cpu().clone() for k, t in net.state_dict().items()}
            best_val_probs = val_probs if val_cases else None
            sha = save_checkpoint(
                out_path,
                {
                    **base_payload,
                    "state_dict": best_state,
                    "optimizer": optimizer.state_dict(),
                    "epoch": epoch,
                    "metrics": best_metrics,
                    "history": history,
                    "created_utc": utc_now(),
                },
            )
        save_checkpoint(
            last_path,
            {
                **base_payload,
                "state_dict": {k: t.detach().cpu() for k, t in net.state_dict().items()},
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "metrics": {"val": val, "train_loss": epoch_loss},
                "history": history,
                "rng_state": _rng_state(rng),
                "best_score": best_score,
                "best_epoch": best_epoch,
                "best_metrics": best_metrics,
                "best_state": best_state,
                "created_utc": utc_now(),
            },
        )
        if stopped:
            break
    if sha is None:
        # Resumed after the last epoch, or nothing improved since: (re)write the best weights.
        if best_state is None:
            raise RuntimeError("training produced no weights")
        sha = save_checkpoint(
            out_path,
            {
                **base_payload,
                "state_dict": best_state,
                "optimizer": optimizer.state_dict(),
                "epoch": best_epoch,
                "metrics": best_metrics,
                "history": history,
                "created_utc": utc_now(),
            },
        )
    return {
        "arch": arch,
        "path": out_path.name,
        "sha256": sha,
        "epoch": best_epoch,
        "epochs_run": len(history),
        "metrics": best_metrics,
        "history": history,
        "stopped": stopped,
        "seconds": time.monotonic() - t_start,
        "val_probs": best_val_probs,
    }


def _norm(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple | list) else v for k, v in kwargs.items()}
