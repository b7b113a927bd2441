"""Benchmark: the review-effort computation that runs inside every approval, and the
lesion-wise scoring of one gate-set study, on a `lite`-grid-sized mask.

A 80x256x256 uint16 pre-contour with N cubic lesions; the "approved" mask edits a third
of them by a few voxels, rejects one and draws one. Prints milliseconds per call (best
of 5) for ``ml.metrics.review_effort.review_effort`` and
``ml.metrics.lesionwise.lesionwise_case``. Target: well under the ~100 ms an approval's
other work (snapshot, audit) costs.

    python benchmarks/review_effort.py [--lesions 10 50]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from ml.metrics.lesionwise import lesionwise_case  # noqa: E402
from ml.metrics.review_effort import review_effort  # noqa: E402

SHAPE = (80, 256, 256)


def masks(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    pre = np.zeros(SHAPE, np.uint16)
    for label in range(1, n + 1):
        z, y, x = rng.integers(4, 70), rng.integers(10, 230), rng.integers(10, 230)
        r = int(rng.integers(1, 6))
        pre[z : z + r, y : y + 2 * r, x : x + 2 * r] = label
    final = pre.copy()
    for label in range(1, n + 1, 3):
        zz, yy, xx = np.nonzero(final == label)
        if zz.size:
            final[zz[0], yy[0], max(xx[0] - 1, 0)] = label  # one voxel grown
    final[2, 2:6, 2:6] = n + 1  # one drawn lesion
    kept = [k for k in range(2, n + 2)]  # lesion 1 rejected
    return pre, final, kept


def best_ms(fn: Callable[..., object], *args: object, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return 1000 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lesions", type=int, nargs="+", default=[10, 50])
    args = parser.parse_args()
    for n in args.lesions:
        pre, final, kept = masks(n)
        effort_ms = best_ms(review_effort, pre, final, kept)
        lesion_ms = best_ms(lesionwise_case, final > 0, pre > 0, (2.0, 1.0, 1.0))
        print(
            f"{SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]}, {n} lesions: review_effort {effort_ms:.0f} ms, "
            f"lesionwise_case {lesion_ms:.0f} ms"
        )


if __name__ == "__main__":
    main()
