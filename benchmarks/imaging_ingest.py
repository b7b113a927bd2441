"""Benchmark: ingest + registration + pre-processing of a planning-size study.

A synthetic 512x512x160 CT and 256x256x176 MR (the ``paper`` acquisition) are
generated once under var/bench/, then ``prepare_study`` is timed phase by phase.
Target: <= 20 s on 2 CPU cores.

    python benchmarks/imaging_ingest.py [--grid paper|lite] [--repeat 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.imaging.pipeline import prepare_study  # noqa: E402
from ml.synthetic import generate_study  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", default="paper", choices=["paper", "lite", "tiny"])
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=Path("var/bench"))
    args = p.parse_args()

    src = args.work / f"paper_seed{args.seed}"
    if not (src / "truth.json").exists():
        t = time.perf_counter()
        generate_study(src, seed=args.seed, grid="paper")
        print(f"generated {src} in {time.perf_counter() - t:.1f} s (not part of the benchmark)")
    truth = json.loads((src / "truth.json").read_text())
    print(
        f"CT {truth['ct']['size_xyz']} @ {[round(v, 3) for v in truth['ct']['spacing_xyz_mm']]} mm, "
        f"MR {truth['mr']['size_xyz']} ({truth['mr']['orientation']}) @ "
        f"{[round(v, 3) for v in truth['mr']['spacing_xyz_mm']]} mm"
    )
    for i in range(args.repeat):
        load = os.getloadavg()[0]
        t = time.perf_counter()
        c = time.process_time()
        meta = prepare_study(src / "dicom", args.work / f"prepared_{args.grid}", grid=args.grid)
        wall = time.perf_counter() - t
        cpu = time.process_time() - c
        tim = meta["timings_s"]
        reg = meta["registration"]
        print(
            f"run {i + 1}: total {wall:.1f} s wall, {cpu:.1f} s CPU (load avg {load:.1f} on "
            f"{os.cpu_count()} cores) | ingest {tim['ingest_s']:.1f} s, registration "
            f"{tim['registration_s']:.1f} s, resample {tim['resample_s']:.1f} s, intensities "
            f"{tim['intensity_s']:.1f} s, write {tim['write_s']:.1f} s | model grid "
            f"{meta['grid']['shape_dhw']} | registration ok={reg['ok']} "
            f"rot={reg['quality'].get('rotation_deg', float('nan')):.2f} deg "
            f"dice={reg['quality'].get('head_dice', float('nan')):.3f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
