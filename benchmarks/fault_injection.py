"""Fault injection: SIGKILL each worker kind at random points; nothing lost, doubled or stuck.

python benchmarks/fault_injection.py [--kills 20] [--training-kills 20]
        [--kinds ingest,inference,training] [--seed 0]
        [--db postgres://postgres@127.0.0.1:5432/lesionloop_faults]
        [--redis redis://127.0.0.1:6379/10] [--stale-s 6] [--sweep-s 2] [--backlog 2]
        [--max-gap-s 6] [--training-max-gap-s 40]

Real parts: PostgreSQL (a fresh database), Redis, Dramatiq worker processes started with
``manage.py rundramatiq`` (one process, one thread: the production shape of the GPU
workers), real synthetic DICOM on the tiny grid, the real tiny ensemble, the real
training runner. For each worker kind the script keeps work queued and kills the
worker's whole process group (dramatiq's main process, its worker child, and a
training run's runner: what a container or a systemd cgroup kill does) at a random
point: ``--aim`` of the kills at 0..``--max-gap-s``/2 s after a job started running,
the others 0..``--max-gap-s`` s after the worker (re)started (booting, idle or working);
then it starts the worker again as
``restart: unless-stopped`` would, and waits for the work it hit to finish. A worker
serving ``default`` (the sweeper) runs throughout; for the ingest kind it is the victim.

Per kind it prints: studies (or training runs) finished, finished twice (two
``ingest_done`` / ``prediction_created`` / ``training_finished`` events for one), stuck
(not final when the run ends), failed, and the time to recover: from a kill that hit a
running job to its requeue, to its claim by the next worker (running again) and to
its completion. Targets: 0 lost, 0 doubled, 0 stuck, recovery
within 2 minutes (with the production thresholds: heartbeat 5 s, stale 45 s, sweep 15 s;
the script uses shorter ones, see ``--stale-s``, and prints what recovery would be with
the production ones added).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]

FAST_TRAINING = {
    "unet": {"epochs": 1, "steps_per_epoch": 2},
    "deepmedic": {"epochs": 1, "segments_per_epoch": 8, "batch_size": 4},
}
QUEUES = {"ingest": "default", "inference": "gpu-infer", "training": "gpu-train"}


@dataclass
class Kill:
    at: float  # time.monotonic() of the kill
    at_wall: float  # time.time() of the kill
    running: list[int]  # ids of the jobs (or runs) running at that moment


@dataclass
class Outcome:
    kind: str
    total: int
    finished: int
    doubled: int
    stuck: int
    failed: int
    kills: list[Kill] = field(default_factory=list)
    requeued_s: list[float] = field(default_factory=list)  # kill -> queued again
    running_s: list[float] = field(default_factory=list)  # kill -> running again
    recovered_s: list[float] = field(default_factory=list)  # kill -> the work finished


class Worker:
    """One ``rundramatiq`` process group, restartable."""

    def __init__(self, name: str, queue: str, env: dict[str, str], logs: Path) -> None:
        self.name, self.queue, self.env, self.logs = name, queue, env, logs
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.logs / f"{self.name}-{self.starts}.log", "wb")  # noqa: SIM115
        self.popen = subprocess.Popen(
            [sys.executable, "manage.py", "rundramatiq", "--queues", self.queue]
            + ["--processes", "1", "--threads", "1"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def kill(self, extra_groups: list[int] = ()) -> None:  # type: ignore[assignment]
        for pgid in [self.popen.pid if self.popen else None, *extra_groups]:
            if pgid:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if self.popen is not None:
            self.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill()


def setup_django(args: argparse.Namespace, storage: Path) -> dict[str, str]:
    """Point this process and the workers at a fresh database, Redis and storage."""
    import psycopg
    import redis

    base, name = args.db.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    redis.Redis.from_url(args.redis).flushdb()
    env = {
        "DJANGO_SETTINGS_MODULE": "lesionloop.settings.test",
        "DATABASE_URL": args.db,
        "LESIONLOOP_E2E_BROKER_URL": args.redis,
        "LESIONLOOP_STORAGE": str(storage),
        "LESIONLOOP_GRID": "tiny",
        "LESIONLOOP_DEVICE": "cpu",
        "LESIONLOOP_RETRAIN_AFTER_APPROVALS": "0",
        "LESIONLOOP_TRAIN_MAX_MINUTES": "10",
        "LESIONLOOP_JOB_HEARTBEAT_S": str(max(1, args.stale_s // 5)),
        "LESIONLOOP_JOB_STALE_S": str(args.stale_s),
        "LESIONLOOP_JOB_REQUEUE_S": str(args.stale_s),
        "LESIONLOOP_SWEEP_INTERVAL_S": str(args.sweep_s),
        # the benchmark measures recovery, so a job is never given up on here
        "LESIONLOOP_JOB_MAX_ATTEMPTS": "1000",
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "platform"), str(ROOT)]),
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return {**os.environ, **env}


def _wait(what: str, probe: Any, timeout_s: float, interval_s: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(interval_s)
    print(f"  (gave up waiting for {what} after {timeout_s:.0f} s)", flush=True)
    return False


def _open_ids(kind: str) -> tuple[list[int], list[int]]:
    """Ids running now, and the process groups to kill with the worker (runners)."""
    from lesionloop.studies.models import Job
    from lesionloop.training.models import TrainingRun

    if kind == "training":
        rows = list(TrainingRun.objects.filter(status="running").values_list("pk", "pid"))
        return [pk for pk, _ in rows], [pid for _, pid in rows if pid]
    job_kind = "ingest" if kind == "ingest" else "presegment"
    running = Job.objects.filter(kind=job_kind, state="running").values_list("pk", flat=True)
    return list(running), []


def _finished(kind: str, ids: list[int]) -> bool:
    from lesionloop.studies.models import Job
    from lesionloop.training.models import TrainingRun

    model: Any = TrainingRun if kind == "training" else Job
    return not model.objects.filter(pk__in=ids, finished_at__isnull=True).exists()


def inject(
    kind: str,
    worker: Worker,
    feed: Callable[[], None],
    args: argparse.Namespace,
    rng: random.Random,
    n_kills: int,
    max_gap_s: float,
) -> list[Kill]:
    """Kill ``worker`` n times, each at a random moment 0..max_gap_s after it (re)started,
    and start it again; ``feed`` keeps work queued. After a kill that hit running work,
    wait until that work finished (the recovery) before the next gap."""
    kills: list[Kill] = []
    for i in range(n_kills):
        feed()
        if rng.random() < args.aim:  # a random point inside the work
            _wait(f"{kind}: a running job", lambda: bool(_open_ids(kind)[0]), 120, 0.1)
            time.sleep(rng.uniform(0.0, max_gap_s / 2))
        else:  # a random point of the worker's life: booting, idle or working
            time.sleep(rng.uniform(0.0, max_gap_s))
        running, groups = _open_ids(kind)
        worker.kill(groups)
        kill = Kill(at=time.monotonic(), at_wall=time.time(), running=running)
        kills.append(kill)
        time.sleep(1.0)  # the supervisor's restart delay
        worker.start()
        if running:
            _wait(f"{kind} {running} after the kill", partial(_finished, kind, running), 600)
        took = f"{time.monotonic() - kill.at:.1f} s" if running else "-"
        print(f"  kill {i + 1}/{n_kills} ({kind}): hit {running or '-'}; recovered {took}")
    return kills


def _recoveries(kind: str, kills: list[Kill]) -> tuple[list[float], list[float], list[float]]:
    """Seconds from each kill that hit running work to its requeue, to its claim by the
    next worker (running again: the recovery) and to its completion."""
    from lesionloop.audit.models import AuditEvent
    from lesionloop.studies.models import Job
    from lesionloop.training.models import TrainingRun

    model: Any = TrainingRun if kind == "training" else Job
    event, key = (
        ("training_requeued", "payload__training_run")
        if kind == "training"
        else ("job_requeued", "payload__job")
    )
    requeued, claimed, finished = [], [], []
    claim_field = "started_at" if kind == "training" else "claimed_at"
    for kill in kills:
        kill_time = datetime.fromtimestamp(kill.at_wall, tz=UTC)
        for pk in kill.running:
            again = (
                AuditEvent.objects.filter(event_type=event, created_at__gte=kill_time, **{key: pk})
                .order_by("created_at")
                .values_list("created_at", flat=True)
                .first()
            )
            if again is not None:
                requeued.append((again - kill_time).total_seconds())
            row = model.objects.filter(pk=pk).values(claim_field, "finished_at").first() or {}
            if row.get("finished_at") is not None:  # else: counted as stuck
                # no kill while the hit work recovers: its last claim is the recovery's
                claimed.append((row[claim_field] - kill_time).total_seconds())
                finished.append((row["finished_at"] - kill_time).total_seconds())
    return requeued, claimed, finished


def _doubled(event_type: str, key: str) -> int:
    from django.db.models import Count

    from lesionloop.audit.models import AuditEvent

    rows = AuditEvent.objects.filter(event_type=event_type).values(key).annotate(n=Count("pk"))
    return sum(1 for r in rows if r["n"] > 1)


def _study_outcome(kind: str, done_status: str, timeout_s: float) -> Outcome:
    """Wait for every study of this kind's jobs to be final; count."""
    from lesionloop.studies.models import Job, Study

    job_kind = "ingest" if kind == "ingest" else "presegment"
    ids = list(Job.objects.filter(kind=job_kind).values_list("study_id", flat=True).distinct())
    final = {done_status, "failed"}
    _wait(
        f"{kind}: all studies final",
        lambda: Study.objects.filter(pk__in=ids).exclude(status__in=final).count() == 0,
        timeout_s,
    )
    statuses = list(Study.objects.filter(pk__in=ids).values_list("status", flat=True))
    event = "ingest_done" if kind == "ingest" else "prediction_created"
    return Outcome(
        kind=kind,
        total=len(ids),
        finished=statuses.count(done_status),
        doubled=_doubled(event, "study_id"),
        stuck=sum(1 for s in statuses if s not in final),
        failed=statuses.count("failed"),
    )


def _upload_studies(n: int, case: Path) -> list[int]:
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import SimpleUploadedFile

    from lesionloop.studies.services import study_upload

    user, _ = User.objects.get_or_create(username="fault-injector")
    paths = sorted((case / "dicom").rglob("*.dcm"))
    ids = []
    for _ in range(n):
        files = [SimpleUploadedFile(p.name, p.read_bytes()) for p in paths]
        ids.append(study_upload(files=files, user=user).pk)
    return ids


def _open_jobs(job_kind: str) -> int:
    from lesionloop.studies.models import Job

    return Job.objects.filter(kind=job_kind, state__in=["queued", "running"]).count()


def _case(work: Path) -> Path:
    from ml.synthetic import generate_study

    case = work / "case"
    if not case.exists():
        generate_study(case, seed=3, grid="tiny")
    return case


def run_ingest(
    args: argparse.Namespace, env: dict[str, str], logs: Path, work: Path, rng: random.Random
) -> Outcome:
    case = _case(work)
    victim = Worker("ingest", "default", env, logs)  # serves default: also the sweeper
    victim.start()

    def feed() -> None:
        _upload_studies(max(0, args.backlog - _open_jobs("ingest")), case)

    kills = inject("ingest", victim, feed, args, rng, args.kills, args.max_gap_s)
    outcome = _study_outcome("ingest", "awaiting_model", args.final_timeout_s)
    victim.stop()
    outcome.kills = kills
    outcome.requeued_s, outcome.running_s, outcome.recovered_s = _recoveries("ingest", kills)
    return outcome


def _awaiting_pool(env: dict[str, str], logs: Path, work: Path, n: int) -> list[int]:
    """n prepared studies awaiting a model (ingested by an unharmed worker if needed)."""
    from lesionloop.studies.models import Study

    pool = list(Study.objects.filter(status="awaiting_model").values_list("pk", flat=True))
    if len(pool) < n:
        worker = Worker("ingest-setup", "default", env, logs)
        worker.start()
        _upload_studies(n - len(pool), _case(work))
        _wait(
            "setup ingest",
            lambda: Study.objects.filter(status="awaiting_model").count() >= n,
            900,
        )
        worker.stop()
        pool = list(Study.objects.filter(status="awaiting_model").values_list("pk", flat=True))
    return pool


def run_inference(
    args: argparse.Namespace, env: dict[str, str], logs: Path, work: Path, rng: random.Random
) -> Outcome:
    from django.db import transaction

    from lesionloop.registry.models import ModelVersion
    from lesionloop.studies.models import Study
    from lesionloop.studies.services import study_presegment_or_wait
    from tests.platform_tests.studies.helpers import tiny_model_dir

    pool = _awaiting_pool(env, logs, work, args.kills * args.backlog + args.backlog)
    storage = Path(os.environ["LESIONLOOP_STORAGE"])
    tiny_model_dir(storage / "models" / "fi-v1")
    mv = ModelVersion.objects.create(
        name="fi-v1", status="active", preset="tiny", weights_dir="models/fi-v1"
    )
    sweeper = Worker("sweeper", "default", env, logs)
    sweeper.start()
    victim = Worker("inference", "gpu-infer", env, logs)
    victim.start()

    def feed() -> None:
        for _ in range(max(0, args.backlog - _open_jobs("presegment"))):
            if not pool:
                return
            with transaction.atomic():
                study = Study.objects.select_for_update().get(pk=pool.pop())
                study_presegment_or_wait(study=study, model_version=mv)

    kills = inject("inference", victim, feed, args, rng, args.kills, args.max_gap_s)
    outcome = _study_outcome("inference", "ready", args.final_timeout_s)
    victim.stop()
    sweeper.stop()
    outcome.kills = kills
    outcome.requeued_s, outcome.running_s, outcome.recovered_s = _recoveries("inference", kills)
    return outcome


def _training_cases(work: Path) -> None:
    from lesionloop.loop.flows import study_import
    from ml.synthetic import generate_study

    for seed in (11, 12, 13):
        folder = work / f"gt-{seed}"
        generate_study(folder, seed=seed, grid="tiny")
        study_import(source=folder / "dicom", ground_truth=folder / "ground_truth_ct.nii.gz")


def run_training(
    args: argparse.Namespace, env: dict[str, str], logs: Path, work: Path, rng: random.Random
) -> Outcome:
    """One run open at a time; a new one is started when none is open."""
    from lesionloop.training.models import TrainingRun
    from lesionloop.training.services import training_run_start

    _training_cases(work)
    sweeper = Worker("sweeper-t", "default", env, logs)
    sweeper.start()
    victim = Worker("training", "gpu-train", env, logs)
    victim.start()
    open_runs = TrainingRun.objects.filter(status__in=["queued", "running"])

    def feed() -> None:
        if not open_runs.exists():
            training_run_start(started_by=None, overrides=FAST_TRAINING)

    kills = inject(
        "training", victim, feed, args, rng, args.training_kills, args.training_max_gap_s
    )
    _wait("training: all runs final", lambda: not open_runs.exists(), args.final_timeout_s)
    victim.stop()
    sweeper.stop()
    statuses = list(TrainingRun.objects.values_list("status", flat=True))
    outcome = Outcome(
        kind="training",
        total=len(statuses),
        finished=statuses.count("succeeded"),
        doubled=_doubled("training_finished", "payload__training_run"),
        stuck=sum(1 for s in statuses if s in ("queued", "running")),
        failed=statuses.count("failed"),
        kills=kills,
    )
    outcome.requeued_s, outcome.running_s, outcome.recovered_s = _recoveries("training", kills)
    return outcome


def _stats(values: list[float]) -> str:
    if not values:
        return "- / -"
    return f"{statistics.median(values):.1f} / {max(values):.1f}"


def report(outcomes: list[Outcome], args: argparse.Namespace) -> None:
    print()
    print(
        f"thresholds: heartbeat {max(1, args.stale_s // 5)} s, stale {args.stale_s} s, "
        f"sweep every {args.sweep_s} s; restart 1 s after the kill"
    )
    print(
        "| kind | kills | hit a running job | finished | finished twice | stuck | failed "
        "| kill → requeued s | kill → running again s | kill → finished s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for o in outcomes:
        hit = sum(1 for k in o.kills if k.running)
        print(
            f"| {o.kind} | {len(o.kills)} | {hit} | {o.finished}/{o.total} | {o.doubled} "
            f"| {o.stuck} | {o.failed} | {_stats(o.requeued_s)} | {_stats(o.running_s)} "
            f"| {_stats(o.recovered_s)} |"
        )
    extra = (45 - args.stale_s) + (15 - args.sweep_s)
    worst = max((max(o.running_s) for o in outcomes if o.running_s), default=0.0)
    print(
        "\ntimes are median / max seconds. With the production thresholds (stale 45 s, "
        f"sweep 15 s) detection takes up to {extra} s longer: worst kill → running again "
        f"here {worst:.0f} s, there about {worst + extra:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="kills per kind (ingest, inference)")
    parser.add_argument("--training-kills", type=int, default=20)
    parser.add_argument("--kinds", default="ingest,inference,training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--db", default="postgres://postgres@127.0.0.1:5432/lesionloop_faults")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/10")
    parser.add_argument("--stale-s", type=int, default=6)
    parser.add_argument("--sweep-s", type=int, default=2)
    parser.add_argument("--backlog", type=int, default=3, help="jobs kept queued or running")
    parser.add_argument(
        "--aim", type=float, default=0.75, help="share of kills aimed inside running work"
    )
    parser.add_argument(
        "--max-gap-s", type=float, default=6.0, help="kill 0..this many s after a (re)start"
    )
    parser.add_argument("--training-max-gap-s", type=float, default=40.0)
    parser.add_argument("--final-timeout-s", type=float, default=600.0)
    args = parser.parse_args()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = set(kinds) - set(QUEUES)
    if unknown:
        parser.error(f"unknown kinds {sorted(unknown)}; choose from {sorted(QUEUES)}")
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="ll-faults-"))
    storage = work / "storage"
    storage.mkdir()
    logs = work / "logs"
    logs.mkdir()
    env = setup_django(args, storage)
    print(f"work folder (worker logs): {work}", flush=True)
    started = time.monotonic()
    runners = {"ingest": run_ingest, "inference": run_inference, "training": run_training}
    outcomes = [runners[kind](args, env, logs, work, rng) for kind in kinds]
    report(outcomes, args)
    print(f"elapsed {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
