"""Benchmark: our CT loading against SimpleITK's ImageSeriesReader and dcm2niix.

The same 512x512x160 planning CT (the ``paper`` synthetic study, generated once under
var/bench/) is read by three whole processes, each timed by wall clock with its peak
resident memory (``resource.getrusage(RUSAGE_CHILDREN)`` after each child, which is the
largest child so far: the runs go from the expected smallest to largest, and each
reader runs in a fresh child), best of ``--repeat``:

- ours: ``scan`` + ``choose``-free ``load_series`` of the CT folder (what ingest does
  for the CT: headers, checks, decode, rescale to float32 HU);
- SimpleITK: ``ImageSeriesReader`` (GDCM) on the same files;
- dcm2niix: conversion to an uncompressed NIfTI (Debian package ``dcm2niix``).

    python benchmarks/ingest_vs_readers.py [--repeat 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OURS = """
import sys
from ml.imaging.dicom_io import load_series, scan
series, _ = scan(__import__("pathlib").Path(sys.argv[1]))
img = load_series(max(series, key=lambda s: len(s.files)), [])
assert img.GetSize()[2] > 0
"""
SITK = """
import sys
import SimpleITK as sitk
r = sitk.ImageSeriesReader()
r.SetFileNames(r.GetGDCMSeriesFileNames(sys.argv[1]))
img = r.Execute()
assert img.GetSize()[2] > 0
"""


def _run(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, peak / 1024 if peak > before else float("nan")


def _measure(cmd: list[str], repeat: int) -> tuple[float, float]:
    """Best wall time of ``repeat`` runs, and the peak RSS measured with /usr/bin/time
    when it is there (per process), else from getrusage."""
    walls, peak = [], float("nan")
    for _ in range(repeat):
        wall, rss = _run(cmd)
        walls.append(wall)
        peak = rss if peak != peak else peak
    if shutil.which("time") or Path("/usr/bin/time").exists():
        out = subprocess.run(
            ["/usr/bin/time", "-f", "%M", *cmd],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        peak = int(out.stderr.strip().splitlines()[-1]) / 1024
    return min(walls), peak


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=Path("var/bench"))
    args = p.parse_args()
    src = args.work / f"paper_seed{args.seed}"
    if not (src / "truth.json").exists():
        from ml.synthetic import generate_study

        generate_study(src, seed=args.seed, grid="paper")
    ct = (src / "dicom" / "ct").resolve()
    n = len(list(ct.glob("*.dcm")))
    rows: dict[str, tuple[float, float]] = {}
    rows["ours"] = _measure([sys.executable, "-c", OURS, str(ct)], args.repeat)
    rows["SimpleITK"] = _measure([sys.executable, "-c", SITK, str(ct)], args.repeat)
    if shutil.which("dcm2niix"):
        with tempfile.TemporaryDirectory() as out:
            cmd = ["dcm2niix", "-z", "n", "-b", "n", "-f", "ct", "-o", out, str(ct)]
            rows["dcm2niix"] = _measure(cmd, args.repeat)
    else:
        print("dcm2niix not installed (apt-get install dcm2niix): skipped")
    print(f"CT {ct} ({n} slices), best of {args.repeat} whole-process runs:")
    ours_s, ours_mib = rows["ours"]
    for name, (wall, mib) in rows.items():
        print(
            f"  {name:10s} {wall:6.2f} s  peak {mib:6.0f} MiB  | ours / {name}: "
            f"time x{ours_s / wall:.2f}, memory x{ours_mib / mib:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
