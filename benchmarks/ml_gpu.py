"""GPU timings for the ``paper`` preset: U-Net and DeepMedic training steps (AMP)
and ensemble inference on a 512x512x80 study, with peak GPU memory.

python benchmarks/ml_gpu.py [--steps 10] [--depth 80]
Without CUDA it says so and exits 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from ml.losses import VolumeAwareDiceLoss  # noqa: E402
from ml.networks import build  # noqa: E402
from ml.training.config import DeepMedicTrainConfig  # noqa: E402


def _timed_steps(step, n: int) -> float:
    for _ in range(2):
        step()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / n


def _once(fn) -> float:
    """Seconds for one call of ``fn``, GPU work included; resets the memory peak first."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t


# long: linear benchmark script (U-Net, DeepMedic, inference timings); needs a CUDA GPU
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--depth", type=int, default=80)
    p.add_argument("--size", type=int, default=512)
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("CUDA is not available on this machine: no GPU numbers measured (exit 0).")
        return 0
    dev = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    torch.backends.cudnn.benchmark = True
    scaler = torch.amp.GradScaler("cuda")

    unet = build("unet", "paper").to(dev)
    unet_opt = torch.optim.RMSprop(unet.parameters(), lr=1e-3)
    x = torch.randn(1, 2, 8, args.size, args.size, device=dev)
    g = (torch.rand(1, 1, 8, args.size, args.size, device=dev) > 0.995).float()
    v = g * 50.0
    loss_fn = VolumeAwareDiceLoss("batch")

    def unet_step():
        unet_opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16):
            prob = torch.sigmoid(unet(x).float())
        loss = loss_fn(prob, g, v)
        scaler.scale(loss).backward()
        scaler.step(unet_opt)
        scaler.update()

    torch.cuda.reset_peak_memory_stats()
    t = _timed_steps(unet_step, args.steps)
    print(
        f"U-Net paper train step, slab 8x{args.size}x{args.size}, AMP: {t * 1000:.0f} ms, peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
    )

    cfg = DeepMedicTrainConfig(segment_dhw=(16, 80, 80), loss_margin_dhw=(4, 16, 16), batch_size=8)
    dm = build("deepmedic", "paper").to(dev)
    dm_opt = torch.optim.RMSprop(dm.parameters(), lr=1e-3)
    xs = torch.randn(cfg.batch_size, 2, *cfg.segment_dhw, device=dev)
    gs = (torch.rand(cfg.batch_size, *cfg.segment_dhw, device=dev) > 0.9).long()

    def dm_step():
        dm_opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16):
            logits = dm(xs).float()
        m = cfg.loss_margin_dhw
        inner = (..., slice(m[0], -m[0]), slice(m[1], -m[1]), slice(m[2], -m[2]))
        loss = F.cross_entropy(logits[inner], gs[inner])
        scaler.scale(loss).backward()
        scaler.step(dm_opt)
        scaler.update()

    torch.cuda.reset_peak_memory_stats()
    t = _timed_steps(dm_step, args.steps)
    print(
        f"DeepMedic paper train step, batch {cfg.batch_size} x {cfg.segment_dhw}, AMP: {t * 1000:.0f} ms, peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
    )

    from ml.inference import EnsemblePredictor
    from ml.inference.sliding import predict_deepmedic, predict_unet

    # Inference as the platform's GPU worker runs it: cudnn.benchmark off (every
    # study has its own head crop, so autotuning would rerun for each new shape).
    torch.backends.cudnn.benchmark = False
    predictor = EnsemblePredictor(unet, dm, device=dev)
    image = (
        np.random.default_rng(0)
        .normal(size=(2, args.depth, args.size, args.size))
        .astype(np.float32)
    )
    spacing = (2.0, 0.6, 0.6)
    for label in ("first study (cold: kernel selection)", "next study, same shape (warm)"):
        t = _once(lambda: predictor.predict(image, spacing))
        print(
            f"ensemble inference {args.size}x{args.size}x{args.depth}, {label}: "
            f"{t:.2f} s, peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
        )
    parts = {
        "U-Net slabs": lambda: predict_unet(unet, image, device=dev),
        "DeepMedic dense": lambda: predict_deepmedic(dm, image, device=dev),
    }
    for name, fn in parts.items():
        print(f"  of which {name}: {_once(fn):.2f} s")
    other = image[:, : args.depth - 3, : args.size - 37, : args.size - 21].copy()
    t = _once(lambda: predictor.predict(other, spacing))
    print(f"ensemble inference, a new shape {tuple(other.shape[1:])}: {t:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
