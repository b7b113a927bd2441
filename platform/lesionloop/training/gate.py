"""Writes for the split and the gate set: assign studies, grow the gate set, score on it.

The rule (docs/MODELS.md, "The split and the gate set"): every approved,
training-eligible study is assigned once, for good, in study-id order. Its *stratum* is
the size group of its smallest ground-truth lesion (``ml.metrics.lesionwise``). Within a
stratum the i-th study assigned by this rule goes to ``SPLIT_CYCLE[i % 5]``: train,
validation, gate, train, train, so every stratum gives one study in five to validation
and one in five to the gate set, and a new site's studies reach both as they arrive.
Two guards keep a first training possible: while no study is in train, the next goes
there; then while none is in validation, the next goes there.

The gate set is versioned in the registry (``GateSetVersion``); a version holds every
member of the one before (never shrinks). When it grows, the active version and the
candidates are scored on the new version (a ``gpu-infer`` job per version, idempotent).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from lesionloop.core import queueing
from lesionloop.registry import services as registry
from lesionloop.registry.models import GateScore, GateSetVersion, ModelVersion
from lesionloop.registry.selectors import gate_set_current

from . import selectors
from .models import SplitAssignment

log = logging.getLogger(__name__)
Split = SplitAssignment.Split

SPLIT_CYCLE = (Split.TRAIN, Split.VALIDATION, Split.GATE, Split.TRAIN, Split.TRAIN)
# Serialises split assignment and gate growth across processes (PostgreSQL).
_LOCK_KEY = 0x6C6C_6761  # "llga"


class SplitResult(NamedTuple):
    train: list[selectors.CaseRecord]
    val: list[selectors.CaseRecord]
    gate: list[selectors.CaseRecord]


def case_stratum(record: selectors.CaseRecord) -> tuple[str, int]:
    """(stratum, number of lesions) of an approved case from its ground truth."""
    from ml.lesions import label_lesions
    from ml.metrics.lesionwise import study_stratum

    try:
        gt = np.load(record.ground_truth)
        meta = json.loads((record.directory / "study.json").read_text())
        spacing = [float(v) for v in meta["grid"]["spacing_mm"]]
    except (OSError, ValueError, KeyError) as exc:
        log.warning("study %s: no stratum (%s)", record.study_id, exc)
        return "unknown", 0
    _, n = label_lesions(gt != 0, 26)
    return study_stratum(gt, spacing), int(n)


def _serialise() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


def _rule_split(stratum: str, n_train: int, n_val: int) -> str:
    if n_train == 0:
        return Split.TRAIN
    if n_val == 0:
        return Split.VALIDATION
    position = SplitAssignment.objects.filter(stratum=stratum).count()
    return SPLIT_CYCLE[position % len(SPLIT_CYCLE)]


def split_ensure(records: list[selectors.CaseRecord]) -> SplitResult:
    """Assign unseen studies once, for good (module docstring); grow the gate set with
    the new gate studies. Returns the records by split."""
    new_gate: list[dict[str, Any]] = []
    with transaction.atomic():
        _serialise()
        known = dict(
            SplitAssignment.objects.filter(study_id__in=[r.study_id for r in records]).values_list(
                "study_id", "split"
            )
        )
        n_train = SplitAssignment.objects.filter(split=Split.TRAIN).count()
        n_val = SplitAssignment.objects.filter(split=Split.VALIDATION).count()
        for record in records:
            if record.study_id in known:
                continue
            stratum, n_lesions = case_stratum(record)
            split = _rule_split(stratum, n_train, n_val)
            SplitAssignment.objects.create(
                study_id=record.study_id, study_key=record.key, split=split, stratum=stratum
            )
            known[record.study_id] = split
            n_train += split == Split.TRAIN
            n_val += split == Split.VALIDATION
            if split == Split.GATE:
                new_gate.append(
                    {
                        "study_id": record.study_id,
                        "snapshot_dir": str(record.directory),
                        "stratum": stratum,
                        "n_lesions": n_lesions,
                    }
                )
        if new_gate:
            gate = registry.gate_set_version_grow(new_members=new_gate)
            transaction.on_commit(lambda: gate_scores_request(gate_set_id=gate.pk))
    return SplitResult(
        [r for r in records if known[r.study_id] == Split.TRAIN],
        [r for r in records if known[r.study_id] == Split.VALIDATION],
        [r for r in records if known[r.study_id] == Split.GATE],
    )


def gate_set_update() -> GateSetVersion | None:
    """Assign the approved studies not yet in a split (after an approval); the current
    gate set version."""
    split_ensure(selectors.training_case_records())
    return gate_set_current()


# --- scoring on the gate set ---------------------------------------------------------


def gate_score_enqueue(score_id: int) -> None:
    from .tasks import gate_score_execute_task

    queueing.send(gate_score_execute_task, score_id)  # never raises: the sweeper resends


GATE_RESEND_AFTER_S = 12 * 60


def gate_scores_sweep(*, now: Any = None) -> int:
    """Queue again the scores a dead worker left ``running`` (started longer ago than the
    actor's time limit) and send again queued scores older than ``GATE_RESEND_AFTER_S``
    (their message was lost). A score is claimed atomically (``gate_score_claim``), so an
    extra message is harmless. Returns how many messages were sent."""
    from django.utils import timezone

    from .tasks import GATE_SCORE_TIME_LIMIT_MS

    now = now or timezone.now()
    dead = now - timedelta(milliseconds=GATE_SCORE_TIME_LIMIT_MS + 60_000)
    GateScore.objects.filter(status=GateScore.Status.RUNNING, started_at__lt=dead).update(
        status=GateScore.Status.QUEUED, message="worker lost: queued again"
    )
    lost = GateScore.objects.filter(
        status=GateScore.Status.QUEUED,
        created_at__lt=now - timedelta(seconds=GATE_RESEND_AFTER_S),
    ).values_list("pk", flat=True)
    for pk in lost:
        gate_score_enqueue(pk)
    return len(lost)


def gate_scores_request(
    *, gate_set_id: int | None = None, version_ids: list[int] | None = None
) -> list[GateScore]:
    """Make sure the given published versions (default: the active one and the
    candidates) have a score on the gate set (default: the current one); new scores are
    queued as jobs on commit. Idempotent: an existing score (queued, running, done or
    failed) is kept. Versions without weights (training, failed) are skipped."""
    gate = (
        GateSetVersion.objects.filter(pk=gate_set_id).first() if gate_set_id else gate_set_current()
    )
    if gate is None:
        return []
    published = ModelVersion.objects.exclude(weights_dir="").exclude(
        status__in=[ModelVersion.Status.TRAINING, ModelVersion.Status.FAILED]
    )
    if version_ids is None:
        published = published.filter(
            status__in=[ModelVersion.Status.ACTIVE, ModelVersion.Status.CANDIDATE]
        )
    else:
        published = published.filter(pk__in=version_ids)
    version_ids = list(published.order_by("pk").values_list("pk", flat=True))
    scores = []
    for version_id in version_ids:
        score, created = registry.gate_score_request(version_id=version_id, gate_set_id=gate.pk)
        if created:
            transaction.on_commit(lambda pk=score.pk: gate_score_enqueue(pk))
        scores.append(score)
    return scores


def gate_score_execute(*, score_id: int) -> None:
    """Score one version on one gate set version (the ``gpu-infer`` actor's body).
    Claimed with a conditional update, so a redelivered message does nothing."""
    score = registry.gate_score_claim(score_id=score_id)
    if score is None:
        return
    version = score.model_version
    try:
        if not version.weights_dir:
            raise RuntimeError(f"{version.name} has no weights ({version.status})")
        from ml.evaluation.gate import score_model

        cases = [
            {"study_id": int(m["study_id"]), "dir": str(_absolute(m["snapshot_dir"]))}
            for m in score.gate_set.members
        ]
        model_dir = Path(settings.STORAGE_ROOT) / version.weights_dir
        metrics = score_model(str(model_dir), cases, device=_device())
    except Exception as exc:  # the score says why; the comparison stays "not comparable"
        log.exception("gate score %s failed", score_id)
        registry.gate_score_fail(score_id=score_id, reason=f"{type(exc).__name__}: {exc}")
        return
    registry.gate_score_finish(score_id=score_id, metrics=metrics)


def _absolute(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else Path(settings.STORAGE_ROOT) / p


def _device() -> str:
    return str(settings.LESIONLOOP_DEVICE or "auto")
