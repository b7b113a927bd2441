"""One trainer for both networks: the loop, validation, budgets and checkpoints.

What differs between the networks lives in ``ml.training.strategies``: the
U-Net learns from random slabs of ``slab_depth`` slices at full in-plane size
(at least ``tumour_fraction`` of each epoch's slabs contain tumour) with a
Dice or volume-aware Dice loss; DeepMedic learns from head windows (the whole
in-plane head box, a few output slices plus ``z_halo`` slices of context) with
a class-balanced cross-entropy on the output slices only, so it trains on
exactly the context whole-study inference gives it (``DeepMedicTrainConfig``).
Both use RMSprop (docs/METHOD.md), validate after every epoch with the same
whole-study inference as the predictor, and keep the weights with the best
mean validation DSC.
"""

from __future__ import annotations

import copy
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ml.inference.sliding import predict_deepmedic, predict_unet
from ml.metrics import aggregate, evaluate_case
from ml.networks import build, network_kwargs
from ml.networks.checkpoint import load_checkpoint, save_checkpoint, utc_now
from ml.training.config import EnsembleTrainConfig
from ml.training.data import Case
from ml.training.strategies import STRATEGY_ARCHS, ArchStrategy, strategy_for

Progress = Callable[[dict[str, Any]], None]
ShouldStop = Callable[[], bool]
StateDict = dict[str, torch.Tensor]


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
    """``"auto"``: CUDA when available, else the CPU; any other name as ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def network_probability(
    arch: str,
    net: nn.Module,
    image: np.ndarray,
    *,
    slab_depth: int,
    slab_stride: int,
    tile_depth: int,
    device: torch.device,
) -> np.ndarray:
    """One network's whole-study tumour probability, as the predictor computes it.

    ``image``: ``(2, D, H, W)`` float32 (MRI, CT); returns ``(D, H, W)`` in [0, 1].
    The U-Net runs on slabs of ``slab_depth`` slices every ``slab_stride``;
    DeepMedic on tiles of ``tile_depth`` output slices (``ml.inference.sliding``).
    """
    if arch == "unet":
        return predict_unet(net, image, slab_depth=slab_depth, stride=slab_stride, device=device)
    return predict_deepmedic(net, image, tile_depth=tile_depth, device=device)


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
        prob = network_probability(
            arch,
            net,
            case.image,
            slab_depth=slab_depth,
            slab_stride=slab_stride,
            tile_depth=tile_depth,
            device=device,
        )
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


def base_payload(
    arch: str,
    net: nn.Module,
    config: EnsembleTrainConfig,
    train_cases: Sequence[Case],
    val_cases: Sequence[Case],
) -> dict[str, Any]:
    """What every checkpoint of one training run shares (``ml.networks.checkpoint``)."""
    return {
        "arch": arch,
        "class_name": type(net).__name__,
        "preset": config.preset,
        "net_kwargs": network_kwargs(arch, config.preset),
        "config": config.to_dict(),
        "train_case_ids": [c.case_id for c in train_cases],
        "val_case_ids": [c.case_id for c in val_cases],
        "seed": config.seed,
        "torch_version": torch.__version__,
    }


def checkpoint_payload(
    base: dict[str, Any],
    *,
    state_dict: StateDict,
    optimizer: torch.optim.Optimizer,
    epoch: int,
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    resume_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The dict a checkpoint file holds: ``base`` (``base_payload``), the weights,
    the optimizer state, ``epoch``, ``metrics``, ``history``, for ``*.last.pt``
    the ``resume_state`` (sampler state and best-so-far), then ``created_utc``."""
    return {
        **base,
        "state_dict": state_dict,
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "metrics": metrics,
        "history": history,
        **(resume_state or {}),
        "created_utc": utc_now(),
    }


@dataclass
class TrainingClock:
    """The time budget of one network: ``budget_min`` minutes from ``t_start``.

    ``recent_steps`` holds the seconds of the last five steps and
    ``val_seconds`` those of the last validation pass (``next_step_fits``).
    """

    budget_min: float | None
    t_start: float = field(default_factory=time.monotonic)
    val_seconds: float = 0.0
    recent_steps: deque[float] = field(default_factory=lambda: deque(maxlen=5))

    def elapsed(self) -> float:
        return time.monotonic() - self.t_start

    def out_of_time(self) -> bool:
        """One more step and a validation pass would end past the budget."""
        return self.budget_min is not None and not next_step_fits(
            self.elapsed(), self.recent_steps, self.val_seconds, 60 * self.budget_min
        )


@dataclass
class BestSoFar:
    """The epoch with the best validation score so far, and its weights."""

    score: float = -math.inf
    epoch: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    state: StateDict | None = None
    val_probs: list[np.ndarray] | None = None  # this call's best epoch only (not on resume)
    sha256: str | None = None  # of the best-weights file when written in this call


@dataclass
class _Run:
    """What one ``train_network`` call carries from step to step."""

    strategy: ArchStrategy
    config: EnsembleTrainConfig
    net: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    rng: np.random.Generator
    device: torch.device
    train_cases: Sequence[Case]
    val_cases: Sequence[Case]
    out_path: Path
    base: dict[str, Any]
    clock: TrainingClock
    emit: Progress
    should_stop: ShouldStop | None
    start_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: BestSoFar = field(default_factory=BestSoFar)
    stopped: str | None = None

    @property
    def arch(self) -> str:
        return self.strategy.arch

    @property
    def last_path(self) -> Path:
        return last_checkpoint_path(self.out_path)

    @property
    def use_amp(self) -> bool:
        return self.config.amp and self.device.type == "cuda"


def last_checkpoint_path(out_path: Path) -> Path:
    """``<stem>.last.pt`` beside ``out_path``: the state to resume from."""
    return out_path.with_name(out_path.stem + ".last.pt")


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
    Raises ``ValueError`` for an unknown ``arch``, no training cases, an invalid
    config or a warm start / resume file of another network, and
    ``TrainingCancelled`` when ``should_stop()`` says so.
    """
    if arch not in STRATEGY_ARCHS:
        raise ValueError(f"unknown architecture {arch!r}")
    if not train_cases:
        raise ValueError("no training cases")
    config.validate()
    run = _start_run(
        strategy_for(arch, config),
        config,
        train_cases,
        val_cases,
        Path(out_path),
        warm_start=warm_start,
        resume=resume,
        max_minutes=max_minutes,
        emit=progress or (lambda event: None),
        should_stop=should_stop,
    )
    for epoch in range(run.start_epoch + 1, run.strategy.cfg.epochs + 1):
        # A new epoch only if a step and its validation still fit in the budget.
        if len(run.history) > run.start_epoch and run.clock.out_of_time():
            run.stopped = "time_budget"
            break
        _run_epoch(run, epoch)
        if run.stopped:
            break
    return _finish(run)


def _start_run(
    strategy: ArchStrategy,
    config: EnsembleTrainConfig,
    train_cases: Sequence[Case],
    val_cases: Sequence[Case],
    out_path: Path,
    *,
    warm_start: str | Path | None,
    resume: bool,
    max_minutes: float | None,
    emit: Progress,
    should_stop: ShouldStop | None,
) -> _Run:
    """Build (or warm-start) the network, its optimizer and sampler; restore a resume."""
    cfg = strategy.cfg
    budget_min = min((m for m in (cfg.max_minutes, max_minutes) if m is not None), default=None)
    device = resolve_device(config.device)
    net = _build_network(strategy, config, warm_start)
    net.to(device)
    optimizer = torch.optim.RMSprop(net.parameters(), lr=cfg.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=config.amp and device.type == "cuda")
    rng = np.random.default_rng([config.seed, strategy.seed_offset])
    start_epoch, history, best = 0, [], BestSoFar()
    last_path = last_checkpoint_path(out_path)
    if resume and last_path.exists():
        start_epoch, history, best = _restore(last_path, strategy.arch, config, net, optimizer, rng)
    base = base_payload(strategy.arch, net, config, train_cases, val_cases)
    return _Run(
        strategy=strategy,
        config=config,
        net=net,
        optimizer=optimizer,
        scaler=scaler,
        rng=rng,
        device=device,
        train_cases=train_cases,
        val_cases=val_cases,
        out_path=out_path,
        base=base,
        clock=TrainingClock(budget_min),
        emit=emit,
        should_stop=should_stop,
        start_epoch=start_epoch,
        history=history,
        best=best,
    )


def _same_network(ckpt: dict[str, Any], arch: str, preset: str) -> bool:
    return ckpt["arch"] == arch and _norm(ckpt["net_kwargs"]) == _norm(network_kwargs(arch, preset))


def _build_network(
    strategy: ArchStrategy, config: EnsembleTrainConfig, warm_start: str | Path | None
) -> nn.Module:
    """A new network seeded by ``config.seed``, its output prior set, or warm-started."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed * 1000 + strategy.seed_offset)
        net = build(strategy.arch, config.preset)
    prior = strategy.init_prior
    if prior is not None and warm_start is None:
        with torch.no_grad():
            net.head.bias.fill_(math.log(prior / (1 - prior)))
    if warm_start is not None:
        ws = load_checkpoint(warm_start)
        if not _same_network(ws, strategy.arch, config.preset):
            raise ValueError(
                f"warm start {warm_start} is a different network ({ws['arch']}, {ws['preset']})"
            )
        net.load_state_dict(ws["state_dict"])
    return net


def _restore(
    last_path: Path,
    arch: str,
    config: EnsembleTrainConfig,
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
) -> tuple[int, list[dict[str, Any]], BestSoFar]:
    """Load ``*.last.pt`` into the network, optimizer and sampler; returns
    ``(epochs done, history, best so far)``."""
    last = load_checkpoint(last_path)
    if not _same_network(last, arch, config.preset) or last["seed"] != config.seed:
        raise ValueError(f"{last_path} holds a different network or seed; cannot resume")
    net.load_state_dict(last["state_dict"])
    optimizer.load_state_dict(last["optimizer"])
    rng.bit_generator.state = last["rng_state"]
    best = BestSoFar(
        last["best_score"], last["best_epoch"], last["best_metrics"], last["best_state"]
    )
    return last["epoch"], last["history"], best


def _run_epoch(run: _Run, epoch: int) -> None:
    """Train one epoch (or until the budget says stop), validate, write checkpoints."""
    run.net.train()
    plan = run.strategy.plan(run.train_cases, run.rng)
    losses = _train_steps(run, epoch, plan)
    epoch_loss = float(np.mean(losses)) if losses else float("nan")
    val, val_probs = _validate_epoch(run, epoch, len(plan), epoch_loss)
    _record_epoch(run, epoch, epoch_loss, val, val_probs)


def _train_steps(run: _Run, epoch: int, plan: list[list[tuple[int, bool]]]) -> list[float]:
    """The epoch's optimisation steps; returns their losses and emits one event each."""
    losses: list[float] = []
    for step, items in enumerate(plan, start=1):
        if run.should_stop is not None and run.should_stop():
            raise TrainingCancelled(f"{run.arch} stopped at epoch {epoch}, step {step}")
        # Stop when one more step and this epoch's validation would end past
        # the budget.
        if losses and run.clock.out_of_time():
            run.stopped = "time_budget"
            break
        t_step = time.monotonic()
        losses.append(_train_step(run, items))
        run.clock.recent_steps.append(time.monotonic() - t_step)
        run.emit(
            {
                "stage": run.arch,
                "epoch": epoch,
                "epochs": run.strategy.cfg.epochs,
                "step": step,
                "steps": len(plan),
                "loss": losses[-1],
                "val": None,
            }
        )
    return losses


def _train_step(run: _Run, items: Sequence[tuple[int, bool]]) -> float:
    """One RMSprop step on one batch (mixed precision on CUDA); returns the loss."""
    run.optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=run.device.type, dtype=torch.float16, enabled=run.use_amp):
        batch = run.strategy.batch(run.net, run.train_cases, items, run.rng, run.device)
        loss = run.strategy.loss(run.net, batch)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    return float(loss.detach())


def _validate_epoch(
    run: _Run, epoch: int, n_steps: int, epoch_loss: float
) -> tuple[dict[str, Any] | None, list[np.ndarray] | None]:
    """``validate_network`` on the validation cases (if any): metrics and maps."""
    if not run.val_cases:
        return None, None
    config = run.config
    t_val = time.monotonic()
    val_probs: list[np.ndarray] = []
    val = validate_network(
        run.arch,
        run.net,
        run.val_cases,
        threshold=config.threshold,
        device=run.device,
        slab_depth=config.unet.slab_depth,
        slab_stride=config.unet.val_stride,
        tile_depth=config.deepmedic.tile_depth,
        connectivity=config.connectivity,
        probs_out=val_probs,
    )
    run.clock.val_seconds = time.monotonic() - t_val
    run.emit(
        {
            "stage": "validate",
            "net": run.arch,
            "epoch": epoch,
            "epochs": run.strategy.cfg.epochs,
            "step": n_steps,
            "steps": n_steps,
            "loss": epoch_loss,
            "val": val,
        }
    )
    return val, val_probs


def _record_epoch(
    run: _Run,
    epoch: int,
    epoch_loss: float,
    val: dict[str, Any] | None,
    val_probs: list[np.ndarray] | None,
) -> None:
    """Append to the history, keep the best weights, write both checkpoints."""
    if run.val_cases:
        score = val["dsc"] if val and val["dsc"] is not None else -1.0
    else:
        score = -epoch_loss
    run.history.append(
        {"epoch": epoch, "loss": epoch_loss, "val": val, "seconds": run.clock.elapsed()}
    )
    best = run.best
    if score > best.score:
        best.score, best.epoch = score, epoch
        best.metrics = {"val": val, "train_loss": epoch_loss}
        best.state = {k: t.detach().cpu().clone() for k, t in run.net.state_dict().items()}
        best.val_probs = val_probs
        best.sha256 = _save_best(run, epoch)
    resume_state = {
        "rng_state": copy.deepcopy(run.rng.bit_generator.state),
        "best_score": best.score,
        "best_epoch": best.epoch,
        "best_metrics": best.metrics,
        "best_state": best.state,
    }
    save_checkpoint(
        run.last_path,
        checkpoint_payload(
            run.base,
            state_dict={k: t.detach().cpu() for k, t in run.net.state_dict().items()},
            optimizer=run.optimizer,
            epoch=epoch,
            metrics={"val": val, "train_loss": epoch_loss},
            history=run.history,
            resume_state=resume_state,
        ),
    )


def _save_best(run: _Run, epoch: int) -> str:
    """Write the best weights to ``out_path``; returns the file's sha256."""
    if run.best.state is None:
        raise RuntimeError("training produced no weights")
    payload = checkpoint_payload(
        run.base,
        state_dict=run.best.state,
        optimizer=run.optimizer,
        epoch=epoch,
        metrics=run.best.metrics,
        history=run.history,
    )
    return save_checkpoint(run.out_path, payload)


def _finish(run: _Run) -> dict[str, Any]:
    """Make sure the best weights are on disk; the summary ``train_network`` returns."""
    best = run.best
    if best.sha256 is None:
        # Resumed after the last epoch, or nothing improved since: (re)write the best weights.
        best.sha256 = _save_best(run, best.epoch)
    return {
        "arch": run.arch,
        "path": run.out_path.name,
        "sha256": best.sha256,
        "epoch": best.epoch,
        "epochs_run": len(run.history),
        "metrics": best.metrics,
        "history": run.history,
        "stopped": run.stopped,
        "seconds": run.clock.elapsed(),
        "val_probs": best.val_probs,
    }


def _norm(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple | list) else v for k, v in kwargs.items()}
