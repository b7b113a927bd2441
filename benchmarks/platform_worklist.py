"""Worklist and lesion-list latency with 10,000 studies and 100,000 lesions in PostgreSQL,
and the SQL query count per request for two page sizes (it must not grow with the page).

python benchmarks/platform_worklist.py [--studies 10000] [--lesions 100000] [--reps 20]
        [--db postgres://postgres@127.0.0.1:5432/lesionloop_bench] [--rebuild]

The database (default ``lesionloop_bench``) is created, migrated and filled once;
later runs reuse it unless ``--rebuild``. Requests go through the real URL map, the
role check, DRF and the serializers (Django's test client, no network).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]


def ensure_database(url: str, rebuild: bool) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname=%s", [name]).fetchone()
        if exists and rebuild:
            conn.execute(f'DROP DATABASE "{name}"')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


# long: linear fixture fill in one transaction (studies, lesions, columns); needs PostgreSQL
def fill(n_studies: int, n_lesions: int) -> None:
    import random

    from django.contrib.auth.models import User
    from django.db import transaction
    from django.utils import timezone

    from lesionloop.accounts.services import user_create
    from lesionloop.registry.models import ModelVersion
    from lesionloop.review.models import Lesion
    from lesionloop.studies.models import Study

    if Study.objects.count() >= n_studies and Lesion.objects.count() >= n_lesions:
        return
    print(f"filling: {n_studies} studies, {n_lesions} lesions ...", flush=True)
    started = time.perf_counter()
    rng = random.Random(0)
    with transaction.atomic():
        Lesion.objects.all().delete()
        Study.objects.all().delete()
        user_create(username="bench-clinician", password="bench-pass-1", role="clinician")
        other = User.objects.get(username="bench-clinician")
        mv, _ = ModelVersion.objects.get_or_create(
            name="bench-v1", defaults={"status": "active", "preset": "lite"}
        )
        statuses = ["ready"] * 6 + ["in_review", "approved", "awaiting_model", "failed"]
        now = timezone.now()
        studies = [
            Study(
                patient_label=f"PAT{i:06d}",
                description="SRS PLANNING HEAD",
                status=rng.choice(statuses),
                prepared=True,
                grid={"preset": "lite", "shape_dhw": [80, 256, 256], "spacing_mm": [2, 1, 1]},
                registration_ok=rng.random() > 0.05,
                model_version=mv,
                priority=rng.random() * 5,
                revision_number=1,
                lease_user=other if i % 50 == 0 else None,
                lease_expires_at=now if i % 50 == 0 else None,
            )
            for i in range(n_studies)
        ]
        Study.objects.bulk_create(studies, batch_size=2000)
        ids = list(Study.objects.values_list("pk", flat=True).order_by("pk"))
        per_study = {pk: 0 for pk in ids}
        # Two studies get 100 lesions each, for the lesion-list page-size check.
        heavy = ids[:2]
        rows = []
        for pk in heavy:
            per_study[pk] = 100
        remaining = n_lesions - 200
        for k in range(remaining):
            per_study[ids[2 + k % (len(ids) - 2)]] += 1
        for pk, count in per_study.items():
            for label in range(1, count + 1):
                v = rng.lognormvariate(4.0, 1.5)
                rows.append(
                    Lesion(
                        study_id=pk,
                        label=label,
                        volume_vox=max(1, int(v)),
                        volume_mm3=v,
                        centroid_vox=[40.0, 128.0, 128.0],
                        centroid_mm=[80.0, 128.0, 128.0],
                        bbox=[38, 120, 120, 42, 136, 136],
                        largest_slice=40,
                        mean_prob=rng.random(),
                        max_prob=0.99,
                        disagreement=rng.random() * 0.3,
                        model_version=mv,
                    )
                )
        Lesion.objects.bulk_create(rows, batch_size=5000)
        # Denormalised worklist columns, in one statement.
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute(
                """UPDATE studies_study s SET lesion_count = l.n, smallest_lesion_mm3 = l.v
                   FROM (SELECT study_id, count(*) n, min(volume_mm3) v
                         FROM review_lesion GROUP BY study_id) l WHERE l.study_id = s.id"""
            )
            cur.execute("ANALYZE")
    print(f"filled in {time.perf_counter() - started:.1f} s", flush=True)


def measure(client, url: str, reps: int) -> tuple[float, float, int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm caches (roles, plans)
    times = []
    queries = 0
    status = 0
    for _ in range(reps):
        with CaptureQueriesContext(connection) as ctx:
            t0 = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
        queries = len(ctx.captured_queries)
        status = response.status_code
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return statistics.median(times), p95, queries, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--lesions", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--db", default="postgres://postgres@127.0.0.1:5432/lesionloop_bench")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()

    ensure_database(args.db, args.rebuild)
    os.environ["DATABASE_URL"] = args.db
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lesionloop.settings.test")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()
    call_command("migrate", verbosity=0)
    fill(args.studies, args.lesions)

    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    from lesionloop.review.models import Lesion
    from lesionloop.studies.models import Study

    client = APIClient()
    client.force_authenticate(User.objects.get(username="bench-clinician"))
    n_s, n_l = Study.objects.count(), Lesion.objects.count()
    heavy = Study.objects.order_by("pk").first().pk
    light = (
        Study.objects.filter(lesion_count=10).order_by("pk").values_list("pk", flat=True).first()
    )
    print(f"\nPostgreSQL, {n_s} studies, {n_l} lesions, {args.reps} requests each (ms)")
    print(f"{'request':58s} {'median':>8s} {'p95':>8s} {'queries':>8s}")
    cases = [
        ("worklist -priority page_size=10", "/api/studies/?page_size=10"),
        ("worklist -priority page_size=100", "/api/studies/?page_size=100"),
        ("worklist -priority page_size=10 page=500", "/api/studies/?page_size=10&page=500"),
        (
            "worklist smallest_lesion_mm3 page_size=100",
            "/api/studies/?ordering=smallest_lesion_mm3&page_size=100",
        ),
        (
            "worklist -created_at status=ready page_size=100",
            "/api/studies/?ordering=-created_at&status=ready&page_size=100",
        ),
        ("worklist search=PAT00012 page_size=100", "/api/studies/?search=PAT00012&page_size=100"),
        (f"lesions of a study with 10 lesions (id {light})", f"/api/studies/{light}/lesions/"),
        (f"lesions of a study with 100 lesions (id {heavy})", f"/api/studies/{heavy}/lesions/"),
        ("study detail", f"/api/studies/{heavy}/"),
    ]
    for name, url in cases:
        median, p95, queries, status = measure(client, url, args.reps)
        flag = "" if status == 200 else f"  (HTTP {status})"
        print(f"{name:58s} {median:8.1f} {p95:8.1f} {queries:8d}{flag}")


if __name__ == "__main__":
    main()
