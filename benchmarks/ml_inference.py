"""CPU inference time and memory peak of the ``lite`` ensemble on a 256x256x80 study.

python benchmarks/ml_inference.py [--depth 80] [--size 256] [--threads 2] [--stride 4] [--no-crop]
Target: <= 30 s on 2 cores. Weights are random: time does not depend on them.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import argparse
import resource
import time

import numpy as np
import torch

from ml.inference import EnsemblePredictor  # noqa: E402
from ml.networks import build  # noqa: E402


def synthetic_head(depth: int, size: int, rng: np.random.Generator) -> np.ndarray:
    zz, yy, xx = np.meshgrid(
        np.linspace(-1, 1, depth), np.linspace(-1, 1, size), np.linspace(-1, 1, size), indexing="ij"
    )
    head = (zz / 1.0) ** 2 + (yy / 0.85) ** 2 + (xx / 0.7) ** 2 <= 1
    image = np.where(head[None], rng.normal(size=(2, depth, size, size)), -1.0).astype(np.float32)
    return image


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depth", type=int, default=80)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--stride", type=int, default=4, help="U-Net slab stride (slab depth 8)")
    p.add_argument("--tile-depth", type=int, default=64)
    p.add_argument("--no-crop", action="store_true", help="do not crop to the head's bounding box")
    p.add_argument("--preset", default="lite")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    image = synthetic_head(args.depth, args.size, np.random.default_rng(0))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    predictor = EnsemblePredictor(
        build("unet", args.preset),
        build("deepmedic", args.preset),
        slab_stride=args.stride,
        tile_depth=args.tile_depth,
        crop_to_head=not args.no_crop,
    )
    t0 = time.perf_counter()
    unet_prob, dm_prob = predictor.probabilities(image)
    t1 = time.perf_counter()
    predictor.combine(unet_prob, dm_prob, (2.0, 1.0, 1.0))
    t2 = time.perf_counter()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # Per-network split, measured again separately.
    from ml.inference.sliding import head_bbox, predict_deepmedic, predict_in_box, predict_unet

    box = None if args.no_crop else head_bbox(image)
    t3 = time.perf_counter()
    predict_in_box(lambda im: predict_unet(predictor.unet, im, stride=args.stride), image, box)
    t4 = time.perf_counter()
    predict_in_box(
        lambda im: predict_deepmedic(predictor.deepmedic, im, tile_depth=args.tile_depth),
        image,
        box,
    )
    t5 = time.perf_counter()
    print(
        f"{args.preset} ensemble, study {args.size}x{args.size}x{args.depth}, {args.threads} threads, "
        f"stride {args.stride}, crop_to_head={not args.no_crop} (box {box})"
    )
    print(
        f"  ensemble predict: {t2 - t0:6.1f} s  (networks {t1 - t0:.1f} s, lesions {t2 - t1:.2f} s)"
    )
    print(f"  U-Net alone {t4 - t3:6.1f} s, DeepMedic alone {t5 - t4:6.1f} s")
    print(
        f"  peak RSS {rss1:.0f} MiB (before predictor {rss0:.0f} MiB, input {image.nbytes / 2**20:.0f} MiB)"
    )
    print("  target: <= 30 s on 2 cores")


if __name__ == "__main__":
    main()
