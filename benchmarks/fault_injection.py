"""Fault injection: SIGKILL each worker kind at random points; nothing lost, doubled or stuck.

python benchmarks/fault_injection.py [--kills 20] [--training-kills 20]
        [--kinds ingest,inference,training] [--seed 0]
        [--db postgres://postgres@127.0.0.1:5432/lesionloop_faults]
        [--redis redis://127.0.0.1:6379/10] [--stale-s 6] [--sweep-s 2]

Real parts: PostgreSQL (a fresh database), Redis, Dramatiq worker processes started with
``manage.py rundramatiq`` (one process, one thread: the production shape of the GPU
workers), real synthetic DICOM on the tiny grid, the real tiny ensemble, the real
training runner. For each worker kind the script keeps work queued and kills the
worker's whole process group (dramatiq's main process, its worker child, and a
training run's runner: what a container or a systemd cgroup kill does) at a random
moment 0..``--max-gap-s`` seconds after it (re)started, then starts it again as
``restart: unless-stopped`` would. A worker serving ``default`` (the sweeper) runs
throughout; for the ingest kind it is the victim itself.

Per kind it prints: studies (or training runs) finished, finished twice (two
``ingest_done`` / ``prediction_created`` / ``training_finished`` events for one), stuck
(not final when the run ends), failed, and the time to recover: from a kill that hit a
running job to that job's completion. Targets: 0 lost, 0 doubled, 0 stuck, recovery
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
from dataclasses import dataclass, field
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
    recoveries_s: list[float] = field(default_factory=list)


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


def _running(kind: str) -> tuple[list[int], list[int]]:
    """Ids running now, and the process groups to kill with the worker (runners)."""
    from lesionloop.studies.models import Job
    from lesionloop.training.models import TrainingRun

    if kind == "training":
        rows = list(TrainingRun.objects.filter(status="running").values_list("pk", "pid"))
        return [pk for pk, _ in rows], [pid for _, pid in rows if pid]
    job_kind = "ingest" if kind == "ingest" else "presegment"
    return list(Job.objects.filter(kind=job_kind, state="running").values_list("pk", flat=True)), []


def inject(
    kind: str, worker: Worker, n_kills: int, max_gap_s: float, rng: random.Random
) -> list[Kill]:
    """Kill ``worker`` n times at random moments after each (re)start; restart it."""
    kills: list[Kill] = []
    for i in range(n_kills):
        time.sleep(rng.uniform(0.0, max_gap_s))
        running, groups = _running(kind)
        worker.kill(groups)
        kills.append(Kill(at=time.monotonic(), running=running))
        print(f"  kill {i + 1}/{n_kills} ({kind}): running {running or '-'}", flush=True)
        time.sleep(1.0)  # the supervisor's restart delay
        worker.start()
    return kills


def _recoveries(kind: str, kills: list[Kill], t0_wall: float, t0_mono: float) -> list[float]:
    """Seconds from each kill that hit running work to that work's completion."""
    from lesionloop.studies.models import Job
    from lesionloop.training.models import TrainingRun

    model = TrainingRun if kind == "training" else Job
    out = []
    for kill in kills:
        for pk in kill.running:
            finished = model.objects.filter(pk=pk).values_list("finished_at", flat=True).first()
            if finished is None:
                continue  # counted as stuck
            wall_kill = t0_wall + (kill.at - t0_mono)
            out.append(finished.timestamp() - wall_kill)
    return out


def _doubled(event_type: str, key: str) -> int:
    from django.db.models import Count

    from lesionloop.audit.models import AuditEvent

    rows = AuditEvent.objects.filter(event_type=event_type).values(key).annotate(n=Count("pk"))
    return sum(1 for r in rows if r["n"] > 1)


def _study_outcome(kind: str, ids: list[int], done_status: str, timeout_s: float) -> Outcome:
    from lesionloop.studies.models import Study

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


def run_ingest(
    args: argparse.Namespace, env: dict[str, str], logs: Path, work: Path, rng: random.Random
) -> tuple[Outcome, list[int]]:
    from ml.synthetic import generate_study

    case = work / "case"
    generate_study(case, seed=3, grid="tiny")
    victim = Worker("ingest", "default", env, logs)  # serves default: also the sweeper
    victim.start()
    ids = _upload_studies(args.studies_per_kill * args.kills, case)
    t0_wall, t0_mono = time.time(), time.monotonic()
    kills = inject("ingest", victim, args.kills, args.max_gap_s, rng)
    outcome = _study_outcome("ingest", ids, "awaiting_model", args.final_timeout_s)
    victim.stop()
    outcome.kills = kills
    outcome.recoveries_s = _recoveries("ingest", kills, t0_wall, t0_mono)
    return outcome, ids


def _ingested_studies(env: dict[str, str], logs: Path, work: Path, n: int) -> list[int]:
    from lesionloop.studies.models import Study
    from ml.synthetic import generate_study

    case = work / "case"
    if not case.exists():
        generate_study(case, seed=3, grid="tiny")
    worker = Worker("ingest-setup", "default", env, logs)
    worker.start()
    ids = _upload_studies(n, case)
    _wait(
        "setup ingest",
        lambda: Study.objects.filter(pk__in=ids, status="awaiting_model").count() == n,
        900,
    )
    worker.stop()
    return ids


def run_inference(
    args: argparse.Namespace,
    env: dict[str, str],
    logs: Path,
    work: Path,
    rng: random.Random,
    ids: list[int],
) -> Outcome:
    from lesionloop.registry.models import ModelVersion
    from lesionloop.studies.models import Study
    from lesionloop.studies.services import studies_awaiting_model_enqueue
    from tests.platform_tests.studies.helpers import tiny_model_dir

    waiting = list(
        Study.objects.filter(pk__in=ids, status="awaiting_model").values_list("pk", flat=True)
    )
    wanted = args.studies_per_kill * args.kills
    if len(waiting) < wanted:
        waiting += _ingested_studies(env, logs, work, wanted - len(waiting))
    storage = Path(os.environ["LESIONLOOP_STORAGE"])
    tiny_model_dir(storage / "models" / "fi-v1")
    ModelVersion.objects.create(
        name="fi-v1", status="active", preset="tiny", weights_dir="models/fi-v1"
    )
    sweeper = Worker("sweeper", "default", env, logs)
    sweeper.start()
    victim = Worker("inference", "gpu-infer", env, logs)
    victim.start()
    studies_awaiting_model_enqueue()
    t0_wall, t0_mono = time.time(), time.monotonic()
    kills = inject("inference", victim, args.kills, args.max_gap_s, rng)
    outcome = _study_outcome("inference", waiting, "ready", args.final_timeout_s)
    victim.stop()
    sweeper.stop()
    outcome.kills = kills
    outcome.recoveries_s = _recoveries("inference", kills, t0_wall, t0_mono)
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
    """Runs one after another; each kill hits whatever run is open (often the same one
    twice); a new run is started when none is open."""
    from lesionloop.training.models import TrainingRun
    from lesionloop.training.services import training_run_start

    _training_cases(work)
    sweeper = Worker("sweeper-t", "default", env, logs)
    sweeper.start()
    victim = Worker("training", "gpu-train", env, logs)
    victim.start()
    t0_wall, t0_mono = time.time(), time.monotonic()
    kills: list[Kill] = []
    for _ in range(args.training_kills):
        if not TrainingRun.objects.filter(status__in=["queued", "running"]).exists():
            training_run_start(started_by=None, overrides=FAST_TRAINING)
        kills += inject("training", victim, 1, args.training_max_gap_s, rng)
    open_runs = TrainingRun.objects.filter(status__in=["queued", "running"])
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
    outcome.recoveries_s = _recoveries("training", kills, t0_wall, t0_mono)
    return outcome


def report(outcomes: list[Outcome], args: argparse.Namespace) -> None:
    print()
    print(f"thresholds: stale {args.stale_s} s, sweep every {args.sweep_s} s; restart after 1 s")
    print(
        "| kind | kills | kills hitting a running job | finished | finished twice | stuck "
        "| failed | recover median s | recover max s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for o in outcomes:
        hit = sum(1 for k in o.kills if k.running)
        med = f"{statistics.median(o.recoveries_s):.1f}" if o.recoveries_s else "-"
        mx = f"{max(o.recoveries_s):.1f}" if o.recoveries_s else "-"
        print(
            f"| {o.kind} | {len(o.kills)} | {hit} | {o.finished}/{o.total} | {o.doubled} "
            f"| {o.stuck} | {o.failed} | {med} | {mx} |"
        )
    extra = (45 - args.stale_s) + (15 - args.sweep_s)
    worst = max((max(o.recoveries_s) for o in outcomes if o.recoveries_s), default=0.0)
    print(
        f"\nwith production thresholds (stale 45 s, sweep 15 s) the worst recovery would be "
        f"about {worst + extra:.0f} s (measured max + {extra} s)"
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
    parser.add_argument(
        "--max-gap-s",
        type=float,
        default=8.0,
        help="kill 0..this many seconds after the worker (re)started",
    )
    parser.add_argument("--training-max-gap-s", type=float, default=30.0)
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
    outcomes: list[Outcome] = []
    ids: list[int] = []
    if "ingest" in kinds:
        outcome, ids = run_ingest(args, env, logs, work, rng)
        outcomes.append(outcome)
    if "inference" in kinds:
        outcomes.append(run_inference(args, env, logs, work, rng, ids))
    if "training" in kinds:
        outcomes.append(run_training(args, env, logs, work, rng))
    report(outcomes, args)
    print(f"elapsed {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
