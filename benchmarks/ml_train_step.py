"""U-Net training-step time with vol-dice (BR) against plain Dice, and the cost
of labelling lesions inside the step instead of once per case.

python benchmarks/ml_train_step.py [--preset lite] [--size 128] [--steps 10] [--threads 2]
Target: vol-dice step <= 1.05x the Dice step (volumes precomputed per case).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import argparse
import statistics
import time

import numpy as np
import torch

from ml.lesions import lesion_volume_map  # noqa: E402
from ml.losses import DiceLoss, VolumeAwareDiceLoss  # noqa: E402
from ml.networks import build  # noqa: E402


def make_slab(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    gt = np.zeros((8, size, size), dtype=np.uint8)
    zz, yy, xx = np.meshgrid(np.arange(8), np.arange(size), np.arange(size), indexing="ij")
    for _ in range(6):
        c = rng.uniform([1, 0.2 * size, 0.2 * size], [7, 0.8 * size, 0.8 * size])
        r = rng.uniform(1.5, size / 12)
        gt |= (
            ((zz - c[0]) / 2) ** 2 + ((yy - c[1]) / r) ** 2 + ((xx - c[2]) / r) ** 2 <= 1
        ).astype(np.uint8)
    image = rng.normal(size=(2, 8, size, size)).astype(np.float32)
    image[0][gt > 0] += 2
    return image, gt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="lite")
    p.add_argument("--size", type=int, default=128, help="in-plane size of the 8-slice slab")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the three variants")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    image, gt = make_slab(args.size, rng)
    vm = lesion_volume_map(gt)
    x = torch.from_numpy(image)[None].to(device)
    g = torch.from_numpy(gt.astype(np.float32))[None, None].to(device)
    v = torch.from_numpy(vm.astype(np.float32))[None, None].to(device)

    def run(loss_fn, label_inside: bool) -> list[float]:
        torch.manual_seed(0)
        net = build("unet", args.preset).to(device)
        opt = torch.optim.RMSprop(net.parameters(), lr=1e-3)
        times = []
        for i in range(args.steps + 2):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            vol = (
                torch.from_numpy(lesion_volume_map(gt).astype(np.float32))[None, None].to(device)
                if label_inside
                else v
            )
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(torch.sigmoid(net(x)), g, vol)
            loss.backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= 2:  # warm-up
                times.append(time.perf_counter() - t)
        return times

    # Interleave the variants so CPU contention hits all of them alike.
    results: dict[str, list[float]] = {
        "dice": [],
        "vol_dice_br": [],
        "vol_dice_br_label_in_step": [],
    }
    for r in range(args.rounds):
        results["dice"] += run(DiceLoss(), False)
        results["vol_dice_br"] += run(VolumeAwareDiceLoss("batch"), False)
        results["vol_dice_br_label_in_step"] += run(VolumeAwareDiceLoss("batch"), True)
        print(f"  round {r + 1}/{args.rounds} done", flush=True)
    med = {k: statistics.median(t) for k, t in results.items()}
    print(
        f"U-Net {args.preset}, slab 8x{args.size}x{args.size}, {args.device}, {args.threads} threads, {2 * args.steps} steps each"
    )
    for k, t in med.items():
        print(f"  {k:28s} median step {t * 1000:8.1f} ms   ratio to Dice {t / med['dice']:.3f}")
    # The losses alone, without the network, to separate loss cost from noise. On a
    # loaded machine every parallel region waits for a descheduled thread, so the
    # single-thread figures are the cost of the arithmetic.
    prob = torch.rand_like(g, requires_grad=True)
    for threads in sorted({1, args.threads}):
        torch.set_num_threads(threads)
        for name, fn in (("dice", DiceLoss()), ("vol_dice_br", VolumeAwareDiceLoss("batch"))):
            ts = []
            for _ in range(50):
                t = time.perf_counter()
                fn(prob, g, v).backward()
                ts.append(time.perf_counter() - t)
            print(
                f"  loss only, {threads} thread(s): {name:12s} {statistics.median(ts) * 1000:7.3f} ms"
            )
    t = time.perf_counter()
    for _ in range(10):
        lesion_volume_map(gt)
    print(f"  lesion_volume_map on the slab: {(time.perf_counter() - t) * 100:.3f} ms")
    print("target: vol_dice_br / dice <= 1.05")


if __name__ == "__main__":
    main()
