"""Writes for training: start, auto-start, cancel, execute (the actor's body), recover.

One training at a time: the database refuses a second open run (a partial unique
index), and the actor claims its run with a conditional update. The networks
train in a supervised subprocess (``runner.py``) writing into a per-attempt
folder that is renamed to ``STORAGE_ROOT/models/<name>/`` only when complete.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from lesionloop.audit.services import audit_record
from lesionloop.core import queueing
from lesionloop.core.exceptions import ClaimLost, Conflict, DomainError
from lesionloop.core.heartbeat import Heartbeat
from lesionloop.registry import services as registry
from lesionloop.registry.models import ModelVersion
from lesionloop.registry.selectors import model_version_active
from ml.atomic import sha256_file  # standard library only: no torch in the web process

from . import gate, selectors, supervisor
from .config import code_version, training_config, validate_overrides
from .models import TrainingRun

log = logging.getLogger(__name__)
Status = TrainingRun.Status

# A queued run waits this long for enough prepared, approved studies (e.g. the
# demo's imports still being ingested) before it gives up.
WAIT_FOR_CASES_S = 30 * 60
WAIT_RETRY_MS = 5_000
# A running run whose supervisor has not written for this long lost its worker.
ORPHAN_AFTER_S = 120
MIN_TRAIN_CASES = 1
MIN_VAL_CASES = 1


def models_root() -> Path:
    return Path(settings.STORAGE_ROOT) / "models"


def attempts_root() -> Path:
    return models_root() / ".attempts"


# --- the split (rule and gate set in gate.py) ----------------------------------------

split_ensure = gate.split_ensure
gate_set_update = gate.gate_set_update
gate_scores_request = gate.gate_scores_request

# --- start, auto-start, cancel ------------------------------------------------------


def training_run_enqueue(run_id: int, *, delay_ms: int | None = None) -> str:
    """Send the run's message and record it; never raises (the message id, or "" when
    the broker is down: the run stays queued and the sweeper sends it later)."""
    from .tasks import training_run_execute_task

    message_id = queueing.send(training_run_execute_task, run_id, delay_ms=delay_ms)
    TrainingRun.objects.filter(pk=run_id).update(message_id=message_id, enqueued_at=timezone.now())
    return message_id


def training_run_start(
    *,
    started_by: User | None,
    trigger: str = TrainingRun.Trigger.MANUAL,
    overrides: dict[str, Any] | None = None,
) -> TrainingRun:
    """Queue a retraining; 409 ``training_running`` when one is queued or running."""
    overrides = validate_overrides(overrides)
    eligible = len(selectors.training_case_records())
    user = started_by if getattr(started_by, "is_authenticated", False) else None
    training_runs_fail_orphans()  # a dead worker must not block training for good
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                trigger=trigger, started_by=user, overrides=overrides, eligible_count=eligible
            )
    except IntegrityError:
        open_run = selectors.training_run_open()
        detail = f" (run {open_run.pk}, {open_run.status})" if open_run else ""
        raise Conflict(
            f"A training run is already in progress{detail}; wait for it to finish or cancel it.",
            code="training_running",
            extra={"training_run": open_run.pk if open_run else None},
        ) from None
    audit_record(
        event_type="training_requested",
        actor=user,
        training_run=run.pk,
        trigger=trigger,
        eligible_studies=eligible,
        overrides=overrides,
    )
    transaction.on_commit(lambda: training_run_enqueue(run.pk))
    return run


def training_maybe_autostart() -> TrainingRun | None:
    """Start retraining once ``LESIONLOOP_RETRAIN_AFTER_APPROVALS`` new training-eligible
    approvals have accumulated since the last run (0 disables). Never raises on a busy
    trainer: the next approval will try again."""
    threshold = settings.LESIONLOOP_RETRAIN_AFTER_APPROVALS
    if threshold <= 0 or selectors.training_run_open() is not None:
        return None
    _total, new = selectors.eligible_approvals_since_last_run()
    if new < threshold:
        return None
    try:
        return training_run_start(started_by=None, trigger=TrainingRun.Trigger.AUTO)
    except Conflict:
        return None


def training_run_cancel(*, run_id: int, user: User) -> TrainingRun:
    """Cancel a queued run at once; ask the supervisor to kill a running one."""
    now = timezone.now()
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            raise DomainError("No such training run.", code="not_found", status_code=404)
        if run.status == Status.QUEUED:
            run.status = Status.CANCELLED
            run.cancel_requested = True
            run.cancelled_by = user
            run.finished_at = now
            run.message = f"Cancelled by {user.get_username()} before it started."
            run.save(
                update_fields=[
                    "status",
                    "cancel_requested",
                    "cancelled_by",
                    "finished_at",
                    "message",
                ]
            )
            audit_record(
                event_type="training_cancelled",
                actor=user,
                training_run=run.pk,
                while_status="queued",
            )
        elif run.status == Status.RUNNING:
            if not run.cancel_requested:
                run.cancel_requested = True
                run.cancelled_by = user
                run.message = (
                    f"Cancel requested by {user.get_username()}; stopping the training process."
                )
                run.save(update_fields=["cancel_requested", "cancelled_by", "message"])
        else:
            raise Conflict(f"Training run {run.pk} already {run.status}.", code="not_running")
    return run


# --- executing a run (the gpu-train actor) ------------------------------------------


def _fail_orphan(run: TrainingRun, reason: str) -> None:
    with transaction.atomic():
        updated = TrainingRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(
            status=Status.FAILED, finished_at=timezone.now(), message=reason
        )
        if updated:
            if run.model_version_id:
                registry.model_version_fail(version_id=run.model_version_id, reason=reason)
            audit_record(
                event_type="training_failed",
                model_version=run.model_version_id,
                training_run=run.pk,
                reason=reason,
            )
    for path in attempts_root().glob(f"run{run.pk}-*"):
        shutil.rmtree(path, ignore_errors=True)


def training_run_execute(*, run_id: int) -> ModelVersion | None:
    """Claim a queued run and train it. Safe to call twice for one run.

    Returns the new version when it went live by itself (the cold start); what follows
    an activation is chained by ``lesionloop.loop.flows``.
    """
    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None:
        return None
    if run.status != Status.QUEUED:
        # running: another worker is on it (if that worker died, the sweeper queues the
        # run again once its heartbeat is stale); finished: nothing to do.
        return None

    records = selectors.training_case_records()
    split = split_ensure(records)
    train, val = split.train, split.val
    if len(train) < MIN_TRAIN_CASES or len(val) < MIN_VAL_CASES:
        _wait_for_cases(run, train=train, val=val)
        return None

    now = timezone.now()
    with transaction.atomic():
        claimed = TrainingRun.objects.filter(
            pk=run.pk, status=Status.QUEUED, cancel_requested=False
        ).update(
            status=Status.RUNNING,
            started_at=now,
            heartbeat_at=now,
            stage="preparing",
            message="",
            attempts=F("attempts") + 1,
        )
        if not claimed:
            return None
        run = TrainingRun.objects.select_related("started_by").get(pk=run.pk)
        active = model_version_active()
        config = training_config(
            grid=settings.LESIONLOOP_GRID, seed=run.pk, overrides=run.overrides
        )
        warm = _usable_weights(active, config["preset"])
        version = _version_start(
            run=run, active=active, config=config, warm=warm, train=train, val=val
        )
    with _run_heartbeat(run):
        return _train(
            run=run, version=version, config=config, train=train, val=val, warm=warm, active=active
        )


def _run_heartbeat(run: TrainingRun) -> Heartbeat:
    """Keeps the claimed run's heartbeat fresh while this worker trains it."""

    def beat() -> bool:
        return bool(
            TrainingRun.objects.filter(
                pk=run.pk, status=Status.RUNNING, attempts=run.attempts
            ).update(heartbeat_at=timezone.now())
        )

    return Heartbeat(beat, every_s=settings.LESIONLOOP_JOB_HEARTBEAT_S)


def _wait_for_cases(
    run: TrainingRun, *, train: list[selectors.CaseRecord], val: list[selectors.CaseRecord]
) -> None:
    """Too few cases to train on: look again shortly, or give up after ``WAIT_FOR_CASES_S``."""
    waited = (timezone.now() - run.created_at).total_seconds()
    message = (
        f"Waiting for approved, prepared training studies: {len(train)} to train on and "
        f"{len(val)} for validation (needs {MIN_TRAIN_CASES} and {MIN_VAL_CASES})."
    )
    if waited < WAIT_FOR_CASES_S:
        TrainingRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(
            message=message, stage="waiting"
        )
        training_run_enqueue(run.pk, delay_ms=WAIT_RETRY_MS)
        return
    with transaction.atomic():
        if TrainingRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(
            status=Status.FAILED, finished_at=timezone.now(), message=message + " Gave up."
        ):
            audit_record(event_type="training_failed", training_run=run.pk, reason=message)


def _version_start(
    *,
    run: TrainingRun,
    active: ModelVersion | None,
    config: dict[str, Any],
    warm: Path | None,
    train: list[selectors.CaseRecord],
    val: list[selectors.CaseRecord],
) -> ModelVersion:
    """The claimed run's new version, in ``training``, recorded on the run and audited
    (inside the claim's transaction)."""
    version = registry.model_version_create(
        parent=active,
        preset=config["preset"],
        created_by=run.started_by,
        hyperparameters={
            **config,
            "grid": settings.LESIONLOOP_GRID,
            "warm_start": active.name if warm else None,
        },
        code_version=code_version(),
        train_study_ids=[r.study_id for r in train],
        val_study_ids=[r.study_id for r in val],
    )
    run.model_version = version
    run.save(update_fields=["model_version"])
    audit_record(
        event_type="training_started",
        actor=run.started_by,
        model_version=version,
        training_run=run.pk,
        version=version.name,
        parent=active.name if active else None,
        train_study_ids=version.train_study_ids,
        val_study_ids=version.val_study_ids,
        trigger=run.trigger,
    )
    return version


def _usable_weights(version: ModelVersion | None, preset: str) -> Path | None:
    if version is None or not version.weights_dir or version.preset != preset:
        return None
    path = Path(settings.STORAGE_ROOT) / version.weights_dir
    return path if (path / "manifest.json").exists() else None


def _stage_case(record: selectors.CaseRecord, cases_dir: Path) -> dict[str, Any]:
    """A prepared-study dir whose ground_truth.npy is the approved mask; symlinks
    into a staging folder when the approved mask lives elsewhere."""
    if record.ground_truth == record.directory / "ground_truth.npy":
        directory = record.directory
    else:
        directory = cases_dir / f"study-{record.study_id}"
        directory.mkdir(parents=True, exist_ok=True)
        for name in ("model_input.npy", "study.json"):
            (directory / name).symlink_to(record.directory / name)
        (directory / "ground_truth.npy").symlink_to(record.ground_truth)
    return {"study_id": record.study_id, "dir": str(directory)}


class _ProgressWriter:
    """Folds the runner's events into the run row, at most one write a second."""

    def __init__(
        self, run_id: int, *, max_minutes: float | None = None, unet_time_share: float = 0.5
    ) -> None:
        self.run_id = run_id
        self.fields: dict[str, Any] = {"losses": [], "val": None}
        self.last_write = 0.0
        self._sums: dict[tuple[str, int], tuple[float, int]] = {}
        # A time-budgeted run gives the U-Net ``unet_time_share`` of it and DeepMedic
        # the rest: progress is the larger of the epoch-based and the time-based share.
        budget_s = max_minutes * 60 if max_minutes else None
        self.net_budget_s = (
            {"unet": budget_s * unet_time_share, "deepmedic": budget_s * (1 - unet_time_share)}
            if budget_s
            else None
        )
        self.net_started: dict[str, float] = {}

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        force = False
        if kind == "progress" and event.get("stage") == "calibrate":
            # After both networks: the operating point chosen on the validation cases.
            force = True
            self.fields.update(stage="calibrate", progress=0.95)
        elif kind == "progress":
            stage = str(event.get("stage") or "")
            net = str(event.get("net") or stage)
            epoch, epochs = int(event.get("epoch") or 0), int(event.get("epochs") or 0)
            step, steps = int(event.get("step") or 0), int(event.get("steps") or 0)
            self.fields.update(stage=stage, epoch=epoch, epochs=epochs, step=step, steps=steps)
            index = 1 if net == "deepmedic" else 0
            within = ((max(epoch, 1) - 1) + (step / steps if steps else 1.0)) / max(epochs, 1)
            started = self.net_started.setdefault(net, time.monotonic())
            if self.net_budget_s and self.net_budget_s.get(net):
                within = max(within, (time.monotonic() - started) / self.net_budget_s[net])
            self.fields["progress"] = round(min(0.95, 0.95 * (index + min(within, 1.0)) / 2), 4)
            loss = event.get("loss")
            if stage == "validate":
                force = True
                self.fields["val"] = {"net": net, "epoch": epoch, **(event.get("val") or {})}
                self._set_loss(net, epoch, loss, final=True)
            elif loss is not None:
                self._set_loss(net, epoch, loss, final=False)
        elif kind == "stage":
            force = True
            self.fields.update(stage=event.get("stage", ""), progress=0.95)
        elif kind == "done":
            force = True
            self.fields.update(stage="publishing", progress=0.99)
        self.flush(force=force)

    def _set_loss(self, net: str, epoch: int, loss: Any, *, final: bool) -> None:
        if loss is None:
            return
        key = (net, epoch)
        if final:
            value = float(loss)
        else:
            total, n = self._sums.get(key, (0.0, 0))
            self._sums[key] = (total + float(loss), n + 1)
            value = (total + float(loss)) / (n + 1)
        losses = self.fields["losses"]
        if losses and (losses[-1]["stage"], losses[-1]["epoch"]) == key:
            losses[-1]["loss"] = round(value, 6)
        else:
            losses.append({"stage": net, "epoch": epoch, "loss": round(value, 6)})

    def flush(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_write < 1.0:
            return
        self.last_write = now
        TrainingRun.objects.filter(pk=self.run_id, status=Status.RUNNING).update(
            heartbeat_at=timezone.now(), **{k: v for k, v in self.fields.items()}
        )


def _runner_command(spec_path: Path) -> list[str]:
    prefix = getattr(settings, "LESIONLOOP_TRAINING_RUNNER", None)
    return [*prefix, str(spec_path)] if prefix else supervisor.runner_command(spec_path)


def _publish(out_dir: Path, final_dir: Path, done: dict[str, Any]) -> list[dict[str, str]]:
    """Check every weights file against the manifest, drop scratch files, then rename
    the attempt's folder into place (never over an existing version)."""
    manifest = json.loads((out_dir / "manifest.json").read_text())
    weights = []
    for _arch, entry in sorted(manifest["files"].items()):
        path = out_dir / entry["path"]
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            raise RuntimeError(f"{entry['path']}: sha256 {actual} does not match the manifest")
        weights.append({"file": entry["path"], "sha256": actual})
    keep = {w["file"] for w in weights} | {"manifest.json"}
    for path in out_dir.iterdir():
        if path.name not in keep:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    evaluation = {k: done.get(k) for k in ("metrics", "baseline_metrics")}
    tmp = out_dir / ".evaluation.json.tmp"
    tmp.write_text(json.dumps(evaluation, indent=2, sort_keys=True))
    os.replace(tmp, out_dir / "evaluation.json")
    weights.append({"file": "manifest.json", "sha256": sha256_file(out_dir / "manifest.json")})
    if final_dir.exists():
        raise RuntimeError(f"{final_dir} exists already; versions are never overwritten")
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    os.rename(out_dir, final_dir)
    fd = os.open(final_dir.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return weights


def _train(
    *,
    run: TrainingRun,
    version: ModelVersion,
    config: dict[str, Any],
    train: list[selectors.CaseRecord],
    val: list[selectors.CaseRecord],
    warm: Path | None,
    active: ModelVersion | None,
) -> ModelVersion | None:
    """Run the trainer; returns the version when it was activated automatically."""
    attempt = attempts_root() / f"run{run.pk}-{version.name}-{uuid.uuid4().hex[:8]}"
    out_dir = attempt / "model"
    cancel_file = attempt / "CANCEL"
    final_dir = models_root() / version.name
    reuse_baseline = _reuses_baseline(active, val)
    try:
        attempt.mkdir(parents=True)
        spec_path = _write_spec(
            attempt,
            config=config,
            train=train,
            val=val,
            out_dir=out_dir,
            warm=warm,
            reuse_baseline=reuse_baseline,
            cancel_file=cancel_file,
        )
        writer = _ProgressWriter(
            run.pk,
            max_minutes=config.get("max_minutes"),
            unet_time_share=float(config.get("unet_time_share", 0.5)),
        )
        timeout_s = getattr(settings, "LESIONLOOP_TRAIN_MAX_SECONDS", None) or (
            settings.LESIONLOOP_TRAIN_MAX_MINUTES * 60
        )
        outcome = supervisor.supervise(
            _runner_command(spec_path),
            log_path=attempt / "train.log",
            timeout_s=float(timeout_s),
            on_start=lambda pid: TrainingRun.objects.filter(pk=run.pk).update(pid=pid),
            on_event=writer,
            should_cancel=_cancel_check(run.pk),
            cancel_file=cancel_file,
        )
        writer.flush(force=True)
        if outcome.status == "succeeded" and outcome.done is not None:
            weights = _publish(out_dir, final_dir, outcome.done)
            metrics = _metrics_with_baseline(outcome.done, active, reuse_baseline=reuse_baseline)
            return _finish_success(run=run, version=version, weights=weights, metrics=metrics)
        _finish_unsuccessful(run=run, version=version, outcome=outcome, timeout_s=timeout_s)
    except ClaimLost:  # the sweeper requeued the run (and failed this attempt's version)
        log.warning("training run %s attempt %s was taken over; stopped", run.pk, run.attempts)
    except Exception as exc:  # any failure leaves a failed version, never a half-published one
        log.exception("training run %s failed", run.pk)
        _finish_failure(
            run=run, version=version, status=Status.FAILED, reason=f"{type(exc).__name__}: {exc}"
        )
    finally:
        shutil.rmtree(attempt, ignore_errors=True)
    return None


def _reuses_baseline(active: ModelVersion | None, val: list[selectors.CaseRecord]) -> bool:
    """Whether the parent's stored scores stand for its baseline: they do when it was
    validated on exactly these studies (inference is deterministic); otherwise the
    runner rescores it."""
    return bool(
        active is not None
        and active.metrics.get("dsc", None) is not None
        and sorted(active.val_study_ids or []) == sorted(r.study_id for r in val)
    )


def _write_spec(
    attempt: Path,
    *,
    config: dict[str, Any],
    train: list[selectors.CaseRecord],
    val: list[selectors.CaseRecord],
    out_dir: Path,
    warm: Path | None,
    reuse_baseline: bool,
    cancel_file: Path,
) -> Path:
    """Stage the cases and write the runner's ``spec.json`` into the attempt's folder."""
    cases_dir = attempt / "cases"
    spec = {
        "config": config,
        "train_cases": [_stage_case(r, cases_dir) for r in train],
        "val_cases": [_stage_case(r, cases_dir) for r in val],
        "out_dir": str(out_dir),
        "warm_start_dir": str(warm) if warm else None,
        "baseline_dir": str(warm) if warm and not reuse_baseline else None,
        "cancel_file": str(cancel_file),
        "torch_threads": getattr(settings, "LESIONLOOP_TRAIN_THREADS", None),
    }
    spec_path = attempt / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    return spec_path


def _cancel_check(run_id: int) -> Callable[[], bool]:
    """The supervisor's ``should_cancel``: whether an admin asked to cancel the run; it
    also writes the run's heartbeat, at most every 5 s."""
    last_beat = [0.0]

    def should_cancel() -> bool:
        now = time.monotonic()
        if now - last_beat[0] > 5:
            last_beat[0] = now
            TrainingRun.objects.filter(pk=run_id).update(heartbeat_at=timezone.now())
        return TrainingRun.objects.filter(pk=run_id, cancel_requested=True).exists()

    return should_cancel


def _metrics_with_baseline(
    done: dict[str, Any], active: ModelVersion | None, *, reuse_baseline: bool
) -> dict[str, Any]:
    """The new version's validation metrics, with the parent's score on the same
    studies under ``baseline`` (its stored one when ``reuse_baseline``)."""
    metrics = dict(done.get("metrics") or {})
    baseline = done.get("baseline_metrics")
    if reuse_baseline and active is not None:
        baseline = {k: v for k, v in active.metrics.items() if k != "baseline"}
    if baseline and active is not None:
        metrics["baseline"] = {**baseline, "version": active.name}
    return metrics


def _finish_unsuccessful(
    *, run: TrainingRun, version: ModelVersion, outcome: supervisor.Outcome, timeout_s: float
) -> None:
    """A cancelled, timed-out or failed training process: the run and version say why."""
    if outcome.status == "cancelled":
        _finish_failure(run=run, version=version, status=Status.CANCELLED, reason="")
    elif outcome.status == "timeout":
        _finish_failure(
            run=run,
            version=version,
            status=Status.FAILED,
            reason=f"Stopped after {timeout_s / 60:.1f} minutes (LESIONLOOP_TRAIN_MAX_MINUTES).",
        )
    else:
        tail = outcome.log_tail.strip().splitlines()[-12:]
        _finish_failure(
            run=run,
            version=version,
            status=Status.FAILED,
            reason=f"The training process exited with code {outcome.returncode}.\n"
            + "\n".join(tail),
        )


def _finish_success(
    *,
    run: TrainingRun,
    version: ModelVersion,
    weights: list[dict[str, str]],
    metrics: dict[str, Any],
) -> ModelVersion | None:
    """Publish the candidate; activate it when nothing is active (returned then).
    ``ClaimLost`` (nothing published) when the run was requeued meanwhile."""
    with transaction.atomic():
        if not (
            TrainingRun.objects.select_for_update()
            .filter(pk=run.pk, status=Status.RUNNING, attempts=run.attempts)
            .exists()
        ):
            raise ClaimLost(f"training run {run.pk}: attempt {run.attempts} was taken over")
        version = registry.model_version_publish(
            version_id=version.pk,
            weights_dir=f"models/{version.name}",
            weights=weights,
            metrics=metrics,
        )
        gate.gate_scores_request(version_ids=[version.pk])
        TrainingRun.objects.filter(pk=run.pk).update(
            status=Status.SUCCEEDED,
            stage="done",
            progress=1.0,
            finished_at=timezone.now(),
            message=f"{version.name} is a candidate.",
        )
        audit_record(
            event_type="training_finished",
            actor=run.started_by,
            model_version=version,
            training_run=run.pk,
            version=version.name,
            metrics={k: v for k, v in metrics.items() if k not in ("per_study", "baseline")},
        )
    if model_version_active() is None:
        # Cold start: with nothing active, the first good version goes live by itself.
        try:
            registry.model_version_promote(version_id=version.pk, user=None, automatic=True)
        except Conflict:
            log.warning("could not activate %s automatically", version.name)
        else:
            TrainingRun.objects.filter(pk=run.pk).update(
                message=f"{version.name} is active (the first model, activated automatically)."
            )
            return version
    return None


def _finish_failure(*, run: TrainingRun, version: ModelVersion, status: str, reason: str) -> None:
    fresh = TrainingRun.objects.select_related("cancelled_by").get(pk=run.pk)
    if status == Status.CANCELLED:
        who = fresh.cancelled_by.get_username() if fresh.cancelled_by else "an admin"
        reason = f"Cancelled by {who}."
    with transaction.atomic():
        updated = TrainingRun.objects.filter(
            pk=run.pk, status=Status.RUNNING, attempts=run.attempts
        ).update(status=status, finished_at=timezone.now(), message=reason[:4000])
        registry.model_version_fail(
            version_id=version.pk, reason=reason, cancelled=status == Status.CANCELLED
        )
        if updated:
            audit_record(
                event_type="training_cancelled"
                if status == Status.CANCELLED
                else "training_failed",
                actor=fresh.cancelled_by if status == Status.CANCELLED else None,
                model_version=version,
                training_run=run.pk,
                version=version.name,
                reason=reason[:2000],
            )


# --- recovery ---------------------------------------------------------------------


def training_runs_fail_orphans() -> int:
    """Fail running runs whose supervisor stopped writing heartbeats (its worker died)."""
    stale = timezone.now() - timedelta(seconds=ORPHAN_AFTER_S)
    orphans = TrainingRun.objects.filter(status=Status.RUNNING, heartbeat_at__lt=stale)
    count = 0
    for run in orphans:
        _fail_orphan(run, "The worker running this training stopped; run it again.")
        count += 1
    return count


def training_runs_recover() -> None:
    """Embedded start-up hook: the process that ran any ``running`` run is gone, so
    those failed; queued runs lost their in-memory message and are sent again."""
    for run in TrainingRun.objects.filter(status=Status.RUNNING):
        _fail_orphan(run, "The server restarted while this training ran; start it again.")
    for run_id in TrainingRun.objects.filter(status=Status.QUEUED).values_list("pk", flat=True):
        training_run_enqueue(run_id)


# --- the sweeper's part (lesionloop.loop.sweeper) -------------------------------------


@dataclass(frozen=True)
class RunSweepCounts:
    requeued: int = 0  # running with a stale heartbeat -> queued, new message
    resent: int = 0  # queued, message lost -> message sent again
    failed: int = 0  # stale after the last allowed attempt -> failed


def _run_stale(cutoff: datetime) -> Q:
    return Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)


def _run_requeue_stale(run: TrainingRun, *, cutoff: datetime) -> str:
    """Queue a run whose worker died again (its half-trained version fails), or fail it
    after the last attempt: "requeued", "failed" or "" when it changed meanwhile."""
    stale = TrainingRun.objects.filter(
        _run_stale(cutoff), pk=run.pk, status=Status.RUNNING, attempts=run.attempts
    )
    last = run.attempts >= settings.LESIONLOOP_JOB_MAX_ATTEMPTS
    reason = (
        f"The worker running this training stopped {run.attempts} times "
        "(LESIONLOOP_JOB_MAX_ATTEMPTS); start it again."
        if last
        else f"The worker running attempt {run.attempts} stopped; training again."
    )
    with transaction.atomic():
        if last:
            changed = stale.update(status=Status.FAILED, finished_at=timezone.now(), message=reason)
        else:
            changed = stale.update(
                status=Status.QUEUED,
                model_version=None,
                heartbeat_at=None,
                pid=None,
                stage="",
                epoch=0,
                step=0,
                progress=0.0,
                losses=[],
                message=reason,
                enqueued_at=timezone.now(),
            )
        if not changed:
            return ""
        if run.model_version_id:
            registry.model_version_fail(version_id=run.model_version_id, reason=reason)
        audit_record(
            event_type="training_failed" if last else "training_requeued",
            model_version=run.model_version_id,
            training_run=run.pk,
            attempts=run.attempts,
            reason=reason,
        )
        if not last:
            transaction.on_commit(lambda: training_run_enqueue(run.pk))
    if run.model_version is not None:  # the dead attempt's work folder, not the next one's
        for path in attempts_root().glob(f"run{run.pk}-{run.model_version.name}-*"):
            shutil.rmtree(path, ignore_errors=True)
    return "failed" if last else "requeued"


def _run_resend_lost(run: TrainingRun, *, cutoff: datetime) -> bool:
    """Send a queued run again when the broker no longer holds its message."""
    from .tasks import training_run_execute_task

    if queueing.message_live(training_run_execute_task.queue_name, run.message_id):
        return False
    sent_before = Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=cutoff)
    if not TrainingRun.objects.filter(sent_before, pk=run.pk, status=Status.QUEUED).update(
        enqueued_at=timezone.now()
    ):
        return False
    log.info("training run %s lost its message (%r); sending it again", run.pk, run.message_id)
    training_run_enqueue(run.pk)
    return True


def training_runs_sweep() -> RunSweepCounts:
    """Queue again the runs a dead worker or a lost message left behind."""
    now = timezone.now()
    stale_cutoff = now - timedelta(seconds=settings.LESIONLOOP_JOB_STALE_S)
    outcomes = [
        _run_requeue_stale(run, cutoff=stale_cutoff)
        for run in TrainingRun.objects.filter(
            _run_stale(stale_cutoff), status=Status.RUNNING
        ).select_related("model_version")
    ]
    resend_cutoff = now - timedelta(seconds=settings.LESIONLOOP_JOB_REQUEUE_S)
    lost = TrainingRun.objects.filter(status=Status.QUEUED, created_at__lt=resend_cutoff).filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=resend_cutoff)
    )
    resent = sum(_run_resend_lost(run, cutoff=resend_cutoff) for run in lost)
    return RunSweepCounts(
        requeued=outcomes.count("requeued"), resent=resent, failed=outcomes.count("failed")
    )
