"""Benchmark: our CT loading against SimpleITK's ImageSeriesReader and dcm2niix.

The same 512x512x160 planning CT (the ``paper`` synthetic study, generated once under
var/bench/) is read by three whole processes, each timed by wall clock (the median of
``--repeat`` rounds; a round runs every reader once, back to back, so a busy machine
slows them alike) with its peak resident memory (GNU time's maximum RSS of one more
run). Then ours and SimpleITK once more, timed inside the process with the imports
apart (what a worker that has them loaded pays per study).

- ours: ``scan`` + ``choose``-free ``load_series`` of the CT folder (what ingest does
  for the CT: headers, checks, decode, rescale to HU: int16, as SimpleITK's reader
  gives, when the slices share an integral rescale);
- SimpleITK: ``ImageSeriesReader`` (GDCM) on the same files;
- dcm2niix: conversion to an uncompressed NIfTI (Debian package ``dcm2niix``).

    python benchmarks/ingest_vs_readers.py [--repeat 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OURS = """
import sys, time
t0 = time.perf_counter()
from pathlib import Path
from ml.imaging.dicom_io import load_series, scan
t1 = time.perf_counter()
series, _ = scan(Path(sys.argv[1]))
t2 = time.perf_counter()
img = load_series(max(series, key=lambda s: len(s.files)), [])
t3 = time.perf_counter()
assert img.GetSize()[2] > 0
print(f"{t1 - t0:.3f} {t3 - t1:.3f} imports {t1 - t0:.2f} s, scan {t2 - t1:.2f} s, "
      f"load_series {t3 - t2:.2f} s ({img.GetPixelIDTypeAsString()})")
"""
SITK = """
import sys, time
t0 = time.perf_counter()
import SimpleITK as sitk
t1 = time.perf_counter()
r = sitk.ImageSeriesReader()
r.SetFileNames(r.GetGDCMSeriesFileNames(sys.argv[1]))
img = r.Execute()
t2 = time.perf_counter()
assert img.GetSize()[2] > 0
print(f"{t1 - t0:.3f} {t2 - t1:.3f} imports {t1 - t0:.2f} s, series scan + read {t2 - t1:.2f} s "
      f"({img.GetPixelIDTypeAsString()})")
"""


def _run(cmd: list[str]) -> float:
    """Wall seconds of one child process."""
    t = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def _peak_mib(cmd: list[str]) -> float:
    """Peak resident memory (MiB) of one run, from GNU time's %M (per process), else
    from getrusage (the largest child so far)."""
    if Path("/usr/bin/time").exists():
        out = subprocess.run(
            ["/usr/bin/time", "-f", "%M", *cmd],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        return int(out.stderr.strip().splitlines()[-1]) / 1024
    _run(cmd)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _measure(cmds: dict[str, list[str]], repeat: int) -> dict[str, tuple[float, float]]:
    """Median wall time of ``repeat`` rounds and the peak RSS, per reader. Each round
    runs every reader once, one after the other, so that the load of a shared machine
    falls on all of them alike."""
    walls: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(repeat):
        for name, cmd in cmds.items():
            walls[name].append(_run(cmd))
    return {name: (statistics.median(walls[name]), _peak_mib(cmd)) for name, cmd in cmds.items()}


def _print_in_process(cmds: dict[str, list[str]], repeat: int) -> None:
    """Ours and SimpleITK timed inside their processes, imports apart (a worker has them
    loaded before a study arrives): median of ``repeat`` more interleaved rounds."""
    work: dict[str, list[float]] = {"ours": [], "SimpleITK": []}
    last: dict[str, str] = {}
    for _ in range(repeat):
        for name in work:
            out = subprocess.run(cmds[name], cwd=ROOT, check=True, capture_output=True, text=True)
            _imports, seconds, text = out.stdout.strip().split(" ", 2)
            work[name].append(float(seconds))
            last[name] = text
    ours, theirs = (statistics.median(work[n]) for n in ("ours", "SimpleITK"))
    print(f"  in-process, imports apart (median of {repeat}; last run's split):")
    for name in work:
        print(f"    {name:10s} {statistics.median(work[name]):5.2f} s  [{last[name]}]")
    print(f"    ours / SimpleITK without imports: time x{ours / theirs:.2f}")


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
    cmds = {
        "ours": [sys.executable, "-c", OURS, str(ct)],
        "SimpleITK": [sys.executable, "-c", SITK, str(ct)],
    }
    with tempfile.TemporaryDirectory() as out:
        if shutil.which("dcm2niix"):
            cmds["dcm2niix"] = ["dcm2niix", "-z", "n", "-b", "n", "-f", "ct", "-o", out, str(ct)]
        else:
            print("dcm2niix not installed (apt-get install dcm2niix): skipped")
        rows = _measure(cmds, args.repeat)
    print(
        f"CT {ct} ({n} slices), median of {args.repeat} interleaved whole-process runs "
        f"(load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):"
    )
    ours_s, ours_mib = rows["ours"]
    _print_in_process(cmds, args.repeat)
    for name, (wall, mib) in rows.items():
        print(
            f"  {name:10s} {wall:6.2f} s  peak {mib:6.0f} MiB  | ours / {name}: "
            f"time x{ours_s / wall:.2f}, memory x{ours_mib / mib:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
