"""Simulated reviewers against gunicorn + PostgreSQL on loopback: latency per endpoint.

python benchmarks/load_reviewers.py [--reviewers 50] [--duration 180] [--think 1.0]
        [--gunicorn-workers 4] [--shape 80,256,256] [--extra-studies 2000]
        [--db postgres://postgres@127.0.0.1:5432/lesionloop_load]

Each reviewer is a thread with its own clinician account (token), its own study and its own
lease client id (``X-Lease-Client``, as one browser tab). It takes the lease, loads both
display volumes whole (as the viewer does on opening a case), then until the time is up
does, after an exponential think time (mean ``--think`` s), one of: the worklist (page of
50), the study's lesion list, one axial slice (``?slice=k``), a lease renewal, or a mask
save (``PUT /mask/`` with ``If-Match`` of its last revision and a changed lesion).

The server is ``gunicorn lesionloop.wsgi`` (sync workers, or gthread with ``--gunicorn-threads``)
with the production settings
(persistent database connections, DEBUG off; HTTPS redirect off for loopback). The
database (default ``lesionloop_load``) is rebuilt at every run. Prints requests per
second, errors, p50/p95/p99 per endpoint and overall, the slowest endpoint, the targets
(0 errors, p95 <= 100 ms, p99 <= 250 ms) and the machine's load average before and after
(other processes share the cores). For information it also prints the CPU of gunicorn and
of the load client itself, and the opening burst (every reviewer's first lease and both
volumes) apart from the rest; the targets are judged on every request.

Reviewers arrive evenly over ``--ramp-up`` seconds (default 10 s, 5 a second, as load
tools' spawn rate does: a clinic's reviewers do not open their cases in the same
millisecond); ``--ramp-up 0`` starts all 50 in one instant, 150 opening requests at once.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import http.client
import json
import os
import random
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]

ACTIONS = [("worklist", 15), ("lesions", 20), ("slice", 40), ("lease", 10), ("mask save", 15)]
TARGET_P95_MS, TARGET_P99_MS = 100.0, 250.0


def head_volume(shape: tuple[int, int, int], seed: int) -> object:
    """An ellipsoid 'head' with a bright rim and noise, int16 (D, H, W)."""
    import numpy as np

    d, h, w = shape
    z, y, x = np.ogrid[:d, :h, :w]
    r = np.sqrt(
        ((z - d / 2) / (d / 2)) ** 2
        + ((y - h / 2) / (h / 2.4)) ** 2
        + ((x - w / 2) / (w / 2.8)) ** 2
    )
    vol = np.where(r < 1.0, 40.0, -1000.0) + np.where((r > 0.9) & (r < 1.0), 1000.0, 0.0)
    vol = vol + np.random.default_rng(seed).normal(0, 12, size=shape)
    return vol.astype(np.int16)


def lesion_labels(shape: tuple[int, int, int]) -> object:
    """Five cubic lesions of growing size, labels 1..5, uint16 (D, H, W)."""
    import numpy as np

    d, h, w = shape
    labels = np.zeros(shape, dtype=np.uint16)
    for i in range(5):
        s = 2 + 2 * i
        z0, y0, x0 = d // 2 - s // 2, h // 4 + i * (h // 10), w // 3
        labels[z0 : z0 + s, y0 : y0 + s, x0 : x0 + s] = i + 1
    return labels


# long: linear set-up of users, tokens, studies, shared prepared files and revision 1
def fill(n_reviewers: int, shape: tuple[int, int, int], extra: int) -> list[tuple[str, int]]:
    """(token, study id) per reviewer; the studies are ready with revision 1 by a model."""
    import numpy as np
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    from lesionloop.accounts.services import user_create
    from lesionloop.registry.models import ModelVersion
    from lesionloop.review.services import study_prediction_apply
    from lesionloop.studies import storage
    from lesionloop.studies.models import Study
    from ml.lesions import label_stats

    spacing = (2.0, 1.0, 1.0)
    shared = storage.storage_root() / "shared-prepared"
    shared.mkdir(parents=True)
    for k, channel in enumerate(storage.DISPLAY_CHANNELS):
        vol = head_volume(shape, k)
        np.save(shared / f"display_{channel}.npy", vol)
        (shared / f"display_{channel}.i16.gz").write_bytes(storage.gzip_array(vol, dtype="int16"))
    labels = lesion_labels(shape)
    labels_gz = storage.gzip_array(labels, dtype="uint16")
    lesions = [
        {**row, "mean_prob": 0.6, "max_prob": 0.9, "disagreement": 0.1}
        for row in label_stats(labels, spacing).values()
    ]
    grid = {
        "preset": "lite",
        "shape_dhw": list(shape),
        "spacing_mm": list(spacing),
        "origin_xyz_mm": [0.0, 0.0, 0.0],
        "direction": [1, 0, 0, 0, 1, 0, 0, 0, 1],
    }
    # The active version's files exist (placeholders: nothing is predicted here), so
    # /healthz, which the script waits on, is green.
    weights = storage.storage_root() / "models" / "load-v1"
    weights.mkdir(parents=True)
    files = {arch: {"path": f"{arch}.pt"} for arch in ("unet", "deepmedic")}
    for entry in files.values():
        (weights / entry["path"]).write_bytes(b"placeholder")
    (weights / "manifest.json").write_text(json.dumps({"files": files}))
    mv = ModelVersion.objects.create(
        name="load-v1", status="active", preset="lite", weights_dir="models/load-v1"
    )
    Study.objects.bulk_create(
        [
            Study(
                patient_label=f"OLD{i:06d}",
                status="approved",
                prepared=True,
                grid=grid,
                model_version=mv,
                revision_number=1,
                priority=(i % 97) / 20,
            )
            for i in range(extra)
        ],
        batch_size=2000,
    )
    out = []
    for i in range(n_reviewers):
        with transaction.atomic():
            user = user_create(
                username=f"reviewer{i:03d}", password=secrets.token_urlsafe(12), role="clinician"
            )
            study = Study.objects.create(
                patient_label=f"LOAD{i:04d}",
                description="SRS PLANNING HEAD",
                status="processing",
                prepared=True,
                grid=grid,
                registration={"ok": True, "message": "ok"},
                registration_ok=True,
                report={"found": ["CT", "MR"], "ignored": []},
            )
            prepared = storage.prepared_dir(study.pk)
            prepared.mkdir(parents=True)
            for src in shared.iterdir():
                os.link(src, prepared / src.name)
            study_prediction_apply(
                study=study, model_version=mv, labels_gz=labels_gz, lesions=lesions, priority=1.0
            )
        out.append((Token.objects.create(user=user).key, study.pk))
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return out


@functools.cache
def mask_bodies(shape: tuple[int, int, int]) -> tuple[bytes, bytes]:
    """The two gzip mask bodies a reviewer saves in turn: lesion 1 edited, and as before
    (the same for every reviewer, so built once)."""
    labels = lesion_labels(shape)
    edited = labels.copy()
    d, h, w = shape
    edited[d // 2, h // 4 : h // 4 + 2, w // 3 : w // 3 + 2] = 0  # lesion 1 edited
    return gzip.compress(edited.tobytes(), 1), gzip.compress(labels.tobytes(), 1)


@dataclass
class Results:
    lock: threading.Lock = field(default_factory=threading.Lock)
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    # The opening of every reviewer (first lease, both whole volumes), reported apart too:
    # with --ramp-up 0 all 50 start in the same instant and these 150 requests queue.
    opening: list[float] = field(default_factory=list)

    def add(self, name: str, ms: float, error: str | None, *, opening: bool = False) -> None:
        with self.lock:
            self.times[name].append(ms)
            if opening:
                self.opening.append(ms)
            if error:
                self.errors[name].append(error)


class Reviewer(threading.Thread):
    """One clinician in one browser tab, reviewing their own study until ``stop_at``."""

    def __init__(
        self,
        i: int,
        port: int,
        token: str,
        study: int,
        shape: tuple[int, int, int],
        results: Results,
        stop_at: float,
        think: float,
        start_delay: float = 0.0,
    ) -> None:
        super().__init__(daemon=True)
        self.start_delay = start_delay
        self.i, self.port, self.study, self.shape = i, port, study, shape
        self.results, self.stop_at, self.think = results, stop_at, think
        self.headers = {"Authorization": f"Token {token}", "X-Lease-Client": f"load-tab-{i}"}
        self.rng = random.Random(i)
        self.revision = 1
        self.masks = mask_bodies(shape)
        self.conn: http.client.HTTPConnection | None = None

    def request(
        self,
        name: str,
        method: str,
        path: str,
        body: bytes | None = None,
        extra: dict[str, str] | None = None,
        opening: bool = False,
    ) -> tuple[int, dict[str, str]]:
        # One connection per request, as a sync gunicorn worker does anyway: a kept-alive
        # connection that the server times out between two requests would count as an error.
        headers = {**self.headers, **(extra or {}), "Connection": "close"}
        t0 = time.perf_counter()
        status, rh, error = 0, {}, None
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
            status, rh = resp.status, {k.lower(): v for k, v in resp.getheaders()}
            if resp.will_close:
                self.conn.close()
                self.conn = None
            if status >= 400:
                error = f"{status} {data[:200]!r}"
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
            self.conn = None
        self.results.add(name, (time.perf_counter() - t0) * 1000, error, opening=opening)
        return status, rh

    def run(self) -> None:
        base = f"/api/studies/{self.study}"
        json_type = {"Content-Type": "application/json"}
        time.sleep(self.start_delay)  # the ramp-up: reviewers arrive one after another
        self.request("lease", "POST", f"{base}/lease/", b"{}", json_type, opening=True)
        for channel in ("mr", "ct"):
            self.request("volume (whole)", "GET", f"{base}/volume/{channel}/", opening=True)
        names = [a for a, _ in ACTIONS]
        weights = [w for _, w in ACTIONS]
        while time.monotonic() < self.stop_at:
            time.sleep(self.rng.expovariate(1.0 / self.think) if self.think > 0 else 0)
            if time.monotonic() >= self.stop_at:
                break
            action = self.rng.choices(names, weights)[0]
            if action == "worklist":
                self.request(action, "GET", "/api/studies/?page_size=50")
            elif action == "lesions":
                self.request(action, "GET", f"{base}/lesions/")
            elif action == "slice":
                k = self.rng.randrange(self.shape[0])
                self.request(
                    action, "GET", f"{base}/volume/{self.rng.choice(['mr', 'ct'])}/?slice={k}"
                )
            elif action == "lease":
                self.request(
                    action, "POST", f"{base}/lease/", b"{}", {"Content-Type": "application/json"}
                )
            else:
                status, rh = self.request(
                    action,
                    "PUT",
                    f"{base}/mask/",
                    self.masks[self.revision % 2],
                    {
                        "Content-Type": "application/octet-stream",
                        "Content-Encoding": "gzip",
                        "If-Match": f'"{self.revision}"',
                        "X-Reason": "load test edit",
                    },
                )
                if status == 200:
                    self.revision = int(rh["x-revision"])


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes of a process group (gunicorn's)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def report(
    results: Results,
    elapsed: float,
    load_before: tuple,
    load_after: tuple,
    args: argparse.Namespace,
    server_cpu_s: float,
    client_cpu_s: float,
) -> bool:
    every = [t for times in results.times.values() for t in times]
    n_err = sum(len(e) for e in results.errors.values())
    print(
        f"\n{args.reviewers} reviewers (arriving over {args.ramp_up:g} s), {elapsed:.0f} s, "
        f"think {args.think} s, gunicorn "
        f"{args.gunicorn_workers} workers x {args.gunicorn_threads} threads, shape {args.shape}, {os.cpu_count()} CPUs"
    )
    print(
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min); "
        f"{len(every)} requests, {len(every) / elapsed:.1f} requests/s, {n_err} errors"
    )
    print(
        f"gunicorn CPU: {server_cpu_s:.1f} s in all, {1000 * server_cpu_s / max(1, len(every)):.1f} "
        "ms per request (PostgreSQL's own CPU not counted)"
    )
    print(
        f"load client CPU: {client_cpu_s:.1f} s in all, {client_cpu_s / elapsed:.2f} cores over "
        "the run (the simulated reviewers share the machine with the server)"
    )
    print(
        f"{'endpoint':16s} {'n':>7s} {'p50':>8s} {'p95':>8s} {'p99':>8s} {'max':>8s} {'errors':>7s}"
    )
    for name, times in sorted(results.times.items()):
        print(
            f"{name:16s} {len(times):7d} {pct(times, 0.5):8.1f} {pct(times, 0.95):8.1f} "
            f"{pct(times, 0.99):8.1f} {max(times):8.1f} {len(results.errors.get(name, [])):7d}"
        )
    p95, p99 = pct(every, 0.95), pct(every, 0.99)
    print(
        f"{'all':16s} {len(every):7d} {pct(every, 0.5):8.1f} {p95:8.1f} {p99:8.1f} {max(every):8.1f} {n_err:7d}"
    )
    _print_split(results, every)
    slowest = max(results.times, key=lambda n: pct(results.times[n], 0.95))
    print(f"slowest endpoint (p95): {slowest} {pct(results.times[slowest], 0.95):.1f} ms")
    for name, errs in results.errors.items():
        print(f"  first errors of {name}: {errs[:3]}")
    ok = n_err == 0 and p95 <= TARGET_P95_MS and p99 <= TARGET_P99_MS
    print(
        f"targets (0 errors, p95 <= {TARGET_P95_MS:.0f} ms, p99 <= {TARGET_P99_MS:.0f} ms): "
        f"{'PASS' if ok else 'FAIL'}"
    )
    return ok


def _print_split(results: Results, every: list[float]) -> None:
    """The opening burst and the rest apart (information only: the targets are judged on
    every request above)."""
    rest = sorted(every)
    for ms in results.opening:
        rest.remove(ms)
    for label, times in (("opening burst", results.opening), ("after it", rest)):
        if times:
            print(
                f"  {label:14s} {len(times):7d} {pct(times, 0.5):8.1f} {pct(times, 0.95):8.1f} "
                f"{pct(times, 0.99):8.1f} {max(times):8.1f}"
            )


def gunicorn_env(args: argparse.Namespace, storage: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "lesionloop.settings.production",
        "DATABASE_URL": args.db,
        "DRAMATIQ_BROKER_URL": args.broker,
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "LESIONLOOP_STORAGE": storage,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "platform"), str(ROOT)]),
    }


def gunicorn_command(args: argparse.Namespace, port: int) -> list[str]:
    cmd = [sys.executable, "-m", "gunicorn", "--chdir", str(ROOT / "platform"), "lesionloop.wsgi"]
    cmd += ["-b", f"127.0.0.1:{port}", "-w", str(args.gunicorn_workers), "--timeout", "60"]
    if args.gunicorn_threads > 1:
        cmd += ["--worker-class", "gthread", "--threads", str(args.gunicorn_threads)]
    return cmd


def wait_healthy(proc: subprocess.Popen, port: int, log: Path) -> None:
    """Until GET /healthz answers 200; stops with the log when it cannot."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 200:
                return
            raise SystemExit(f"/healthz answered {resp.status}: {body[:1000]!r}")
        except OSError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    raise SystemExit(f"gunicorn did not answer /healthz in 60 s:\n{log.read_text()[-3000:]}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviewers", type=int, default=50)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load")
    parser.add_argument("--think", type=float, default=1.0, help="mean think time (s)")
    parser.add_argument(
        "--ramp-up",
        type=float,
        default=10.0,
        help="seconds over which the reviewers arrive, evenly (0: all in the same instant)",
    )
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument(
        "--gunicorn-threads", type=int, default=1, help="> 1: gthread workers (docker/compose.yml)"
    )
    parser.add_argument("--shape", default="80,256,256", help="D,H,W of each study (lite grid)")
    parser.add_argument(
        "--extra-studies", type=int, default=2000, help="other studies in the worklist"
    )
    parser.add_argument("--db", default="postgres://postgres@127.0.0.1:5432/lesionloop_load")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/11")
    parser.add_argument(
        "--keep-storage", action="store_true", help="keep the storage folder (gunicorn.log)"
    )
    return parser.parse_args()


def set_up(args: argparse.Namespace, shape: tuple[int, int, int]) -> tuple[str, list]:
    """A fresh database and storage folder; (storage, reviewers' (token, study id))."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from platform_worklist import ensure_database

    ensure_database(args.db, rebuild=True)
    storage = tempfile.mkdtemp(prefix="ll-load-")
    os.environ.update(
        DATABASE_URL=args.db,
        LESIONLOOP_STORAGE=storage,
        DJANGO_SETTINGS_MODULE="lesionloop.settings.test",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    reviewers = fill(args.reviewers, shape, args.extra_studies)
    print(
        f"set-up: {args.reviewers} studies {shape} + {args.extra_studies} others in "
        f"{time.perf_counter() - t0:.1f} s; storage {storage}",
        flush=True,
    )
    return storage, reviewers


def warm_up(port: int, token: str, study: int, n: int) -> None:
    """Concurrent requests, not counted, so every gunicorn worker has loaded the URL map,
    DRF and a database connection before the clock starts (the first request of a cold
    worker takes seconds on a loaded machine)."""

    def one() -> None:
        for path in ("/api/studies/?page_size=50", f"/api/studies/{study}/lesions/"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.request("GET", path, headers={"Authorization": f"Token {token}"})
            conn.getresponse().read()
            conn.close()

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main() -> None:
    args = parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    storage, reviewers = set_up(args, shape)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = Path(storage) / "gunicorn.log"
    with open(log, "wb") as fh:
        server = subprocess.Popen(
            gunicorn_command(args, port),
            cwd=ROOT,
            env=gunicorn_env(args, storage),
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(server, port, log)
        warm_up(port, *reviewers[0], n=2 * args.gunicorn_workers * args.gunicorn_threads)
        results = Results()
        load_before = os.getloadavg()
        cpu_before = group_cpu_seconds(server.pid)
        client_before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.monotonic()
        threads = [
            Reviewer(
                i,
                port,
                token,
                study,
                shape,
                results,
                start + args.duration,
                args.think,
                start_delay=args.ramp_up * i / max(len(reviewers), 1),
            )
            for i, (token, study) in enumerate(reviewers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=args.duration + 120)
        elapsed = time.monotonic() - start
        cpu = group_cpu_seconds(server.pid) - cpu_before
        client_after = resource.getrusage(resource.RUSAGE_SELF)
        client_cpu = (client_after.ru_utime - client_before.ru_utime) + (
            client_after.ru_stime - client_before.ru_stime
        )
        ok = report(results, elapsed, load_before, os.getloadavg(), args, cpu, client_cpu)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        if not args.keep_storage:
            shutil.rmtree(storage, ignore_errors=True)  # 50 studies' volumes and revisions
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
