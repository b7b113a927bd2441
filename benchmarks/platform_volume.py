"""Serving a 512x512x80 int16 display volume: precompression cost at ingest and the
time of GET /api/studies/{id}/volume/mr/ (whole, gzip file read) and ?slice=k.

python benchmarks/platform_volume.py [--depth 80] [--size 512] [--reps 10]
        [--db postgres://postgres@127.0.0.1:5432/lesionloop_bench]

Uses the benchmark database of platform_worklist.py (created if missing) and a
temporary storage folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]


def head_volume(depth: int, size: int) -> np.ndarray:  # noqa: F821
    import numpy as np

    rng = np.random.default_rng(0)
    z, y, x = np.ogrid[:depth, :size, :size]
    r = np.sqrt(
        ((z - depth / 2) / (depth / 2)) ** 2
        + ((y - size / 2) / (size / 2.4)) ** 2
        + ((x - size / 2) / (size / 2.8)) ** 2
    )
    vol = np.where(r < 1.0, 40.0, -1000.0) + np.where((r > 0.9) & (r < 1.0), 1000.0, 0.0)
    vol = vol + rng.normal(0, 12, size=(depth, size, size))
    return vol.astype(np.int16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=80)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--db", default="postgres://postgres@127.0.0.1:5432/lesionloop_bench")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from platform_worklist import ensure_database

    ensure_database(args.db, False)
    os.environ["DATABASE_URL"] = args.db
    os.environ["LESIONLOOP_STORAGE"] = tempfile.mkdtemp(prefix="ll-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lesionloop.settings.test")
    import django

    django.setup()
    import numpy as np
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()
    call_command("migrate", verbosity=0)

    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    from lesionloop.accounts.services import user_create
    from lesionloop.studies import storage
    from lesionloop.studies.models import Study

    if not User.objects.filter(username="bench-clinician").exists():
        user_create(username="bench-clinician", password="bench-pass-1", role="clinician")
    shape = (args.depth, args.size, args.size)
    study = Study.objects.create(
        status="ready",
        prepared=True,
        grid={"shape_dhw": list(shape), "spacing_mm": [2.0, 0.6, 0.6]},
    )
    volume = head_volume(*shape[:2])
    out = storage.prepared_dir(study.pk)
    out.mkdir(parents=True)
    np.save(out / "display_mr.npy", volume)
    t0 = time.perf_counter()
    data = storage.gzip_array(volume, dtype="int16")
    compress_s = time.perf_counter() - t0
    storage.atomic_write_bytes(storage.display_file(study.pk, "mr"), data)

    client = APIClient()
    client.force_authenticate(User.objects.get(username="bench-clinician"))

    def timed(url: str) -> tuple[float, int]:
        times, size = [], 0
        for _ in range(args.reps):
            t = time.perf_counter()
            response = client.get(url)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            times.append((time.perf_counter() - t) * 1000)
            size = len(body)
        return statistics.median(times), size

    whole_ms, whole_bytes = timed(f"/api/studies/{study.pk}/volume/mr/")
    slice_ms, slice_bytes = timed(f"/api/studies/{study.pk}/volume/mr/?slice={shape[0] // 2}")
    raw_mb = volume.nbytes / 1e6
    print(f"volume {shape} int16 = {raw_mb:.1f} MB raw")
    print(
        f"precompress at ingest (gzip level 1): {compress_s * 1000:.0f} ms -> {len(data) / 1e6:.1f} MB"
    )
    print(
        f"GET whole volume (file read, gzip on the wire): median {whole_ms:.1f} ms, {whole_bytes / 1e6:.1f} MB"
    )
    print(
        f"GET one slice ?slice=k (mmap + gzip): median {slice_ms:.1f} ms, {slice_bytes / 1e3:.1f} kB"
    )
    study.delete()


if __name__ == "__main__":
    main()
