"""Our slab predictor against MONAI's ``sliding_window_inference``, in one run.

python benchmarks/sliding_vs_monai.py [--depth 80] [--size 256] [--preset lite]
    [--model-dir DIR] [--threads 2] [--repeat 3]

Both run the same U-Net on the same (2, D, H, W) volume with the same windows
(slabs of 8 slices, stride 4, whole planes), the same blending (our tent
weights, passed to MONAI as ``roi_weight_map``) and the same batch of 4 windows
per call. Each side runs in its own child process so that its peak resident
memory (``ru_maxrss``) is its own. Printed: median time, peak memory, and the
largest absolute difference of the two probability maps.

DeepMedic is not compared: its pass is dense (tiles with a z halo, no blending),
equal to one pass over the whole volume, so a blending window adds nothing.
Weights are random unless ``--model-dir`` names a model directory
(``manifest.json`` + checkpoints): time and memory do not depend on them.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import argparse
import json
import resource
import subprocess
import tempfile
import time

import numpy as np
import torch

from benchmarks.ml_inference import synthetic_head  # noqa: E402
from ml.inference.sliding import predict_unet, tent_weights  # noqa: E402
from ml.networks import build  # noqa: E402

SLAB, STRIDE, BATCH = 8, 4, 4


def monai_unet(net: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    """MONAI's sliding window with our windows and tent blending; (D, H, W) float32."""
    from monai.inferers import sliding_window_inference

    _, _, h, w = image.shape
    weight = torch.from_numpy(
        np.broadcast_to(tent_weights(SLAB)[:, None, None], (SLAB, h, w)).copy()
    )
    with torch.no_grad():
        out = sliding_window_inference(
            torch.from_numpy(image)[None],
            roi_size=(SLAB, h, w),
            sw_batch_size=BATCH,
            predictor=lambda x: torch.sigmoid(net(x).float()),
            overlap=(1 - STRIDE / SLAB, 0.0, 0.0),
            mode="constant",
            roi_weight_map=weight,
        )
    return out[0, 0].numpy().astype(np.float32)


def ours_unet(net: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    return predict_unet(net, image, slab_depth=SLAB, stride=STRIDE, slab_batch=BATCH, amp=False)


def _network(args: argparse.Namespace) -> torch.nn.Module:
    if args.model_dir:
        from ml.inference import EnsemblePredictor

        return EnsemblePredictor.from_dir(args.model_dir).unet
    torch.manual_seed(0)
    return build("unet", args.preset).eval()


def child(args: argparse.Namespace) -> None:
    """One side: time ``--repeat`` runs, save the map, print JSON."""
    torch.set_num_threads(args.threads)
    net = _network(args)
    image = synthetic_head(args.depth, args.size, np.random.default_rng(0))
    run = ours_unet if args.only == "ours" else monai_unet
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        prob = run(net, image)
        times.append(time.perf_counter() - t0)
    np.save(args.out, prob)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"median_s": float(np.median(times)), "times_s": times, "peak_mib": peak}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depth", type=int, default=80)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--preset", default="lite")
    p.add_argument("--model-dir", default="")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only", choices=["ours", "monai"], help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.only:
        child(args)
        return
    results, maps = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for side in ("ours", "monai"):
            out = str(Path(tmp) / f"{side}.npy")
            cmd = [sys.executable, __file__, *sys.argv[1:], "--only", side, "--out", out]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results[side] = json.loads(done.stdout.strip().splitlines()[-1])
            maps[side] = np.load(out)
    diff = float(np.abs(maps["ours"] - maps["monai"]).max())
    print(
        f"U-Net ({args.preset}) on (2, {args.depth}, {args.size}, {args.size}), "
        f"slabs {SLAB}/stride {STRIDE}, {args.threads} threads, median of {args.repeat}"
    )
    for side, r in results.items():
        print(f"  {side:5s}  {r['median_s']:7.2f} s   peak {r['peak_mib']:7.0f} MiB")
    ratio = results["monai"]["median_s"] / results["ours"]["median_s"]
    print(f"  MONAI / ours time: {ratio:.2f}x   max |p_ours - p_monai| = {diff:.2e}")


if __name__ == "__main__":
    main()
