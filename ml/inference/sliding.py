"""Whole-study probability maps from one network: U-Net over overlapping slabs,
DeepMedic densely (tiled along z), both restricted to the head's bounding box.

The same functions serve validation during training and the predictor, so a
network is always evaluated exactly as it will be used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)
T = TypeVar("T")

HeadBox = tuple[int, int, int, int]  # y0, x0, y1, x1 (exclusive), in-plane only


def head_bbox(model_input: np.ndarray, margin_vox: int = 4, tol: float = 1e-3) -> HeadBox:
    """In-plane bounding box of everything that is not background.

    Background is the value of each channel at the corner voxel (the
    normalised images are constant outside the head). Every slice is kept;
    only rows and columns are cropped. Returns the whole plane if nothing
    differs from the background.
    """
    if model_input.ndim != 4:
        raise ValueError(f"expected (C, D, H, W), got {model_input.shape}")
    _, _, h, w = model_input.shape
    background = model_input[:, :1, :1, :1]
    fg = (np.abs(model_input - background) > tol).any(axis=(0, 1))
    rows, cols = np.flatnonzero(fg.any(axis=1)), np.flatnonzero(fg.any(axis=0))
    if rows.size == 0:
        return (0, 0, h, w)
    return (
        max(0, int(rows[0]) - margin_vox),
        max(0, int(cols[0]) - margin_vox),
        min(h, int(rows[-1]) + 1 + margin_vox),
        min(w, int(cols[-1]) + 1 + margin_vox),
    )


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(
        device_type=device.type, dtype=torch.float16, enabled=amp and device.type == "cuda"
    )


def halve_on_oom(run: Callable[[int], T], size: int, what: str) -> T:
    """``run(size)``, retried with ``size // 2`` while the GPU runs out of memory.

    Inference chunks (U-Net slabs per call, DeepMedic slices per tile) are sized
    for a large card: a ``paper`` DeepMedic tile of 64 slices at 512 x 512 peaks
    at 46 GiB on an H100. On a smaller card the same study then runs in smaller
    chunks (same result, more calls) instead of failing. ``size`` 1 that still
    does not fit re-raises the error.
    """
    while True:
        try:
            return run(size)
        except torch.cuda.OutOfMemoryError:
            if size <= 1:
                raise
            size = max(1, size // 2)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            log.warning("GPU out of memory: retrying with %s %d", what, size)


def slab_starts(depth: int, slab_depth: int, stride: int) -> list[int]:
    """Start slices of overlapping slabs that cover ``depth`` slices (last one flush)."""
    if depth <= slab_depth:
        return [0]
    starts = list(range(0, depth - slab_depth + 1, stride))
    if starts[-1] != depth - slab_depth:
        starts.append(depth - slab_depth)
    return starts


def tent_weights(slab_depth: int) -> np.ndarray:
    """Blending weights along z: low at the slab ends, where zero padding was seen."""
    i = np.arange(slab_depth, dtype=np.float32)
    return np.minimum(i + 1, slab_depth - i)


@torch.no_grad()
def predict_unet(
    net: nn.Module,
    image: np.ndarray,
    *,
    slab_depth: int = 8,
    stride: int = 4,
    device: torch.device | str = "cpu",
    amp: bool = True,
    slab_batch: int = 4,
) -> np.ndarray:
    """Sigmoid probabilities (D, H, W) float32 from slabs of ``slab_depth`` slices.

    Studies with fewer slices than a slab are zero-padded along z (as the
    convolutions would) and cropped back. Slabs go through the network
    ``slab_batch`` at a time: on the CPU, PyTorch runs a 3D convolution whose
    ``B*C*D*H`` is at most 20480 on its slow reference kernel instead of oneDNN,
    and with ``B=1`` every level of the ``lite`` U-Net on an 8-slice slab falls
    there (8 x 8 x 224 = 14336); two or more slabs per call take oneDNN, about
    3.7x faster per slab (3.5 s -> 0.94 s for a 8x224x186 slab on 2 cores).
    """
    if slab_batch < 1:
        raise ValueError(f"slab_batch must be >= 1, got {slab_batch}")
    if stride < 1 or stride > slab_depth:
        raise ValueError(f"stride must be in 1..{slab_depth}, got {stride}")
    device = torch.device(device)
    net.eval()
    c, d, h, w = image.shape
    if d < slab_depth:
        padded = np.zeros((c, slab_depth, h, w), dtype=np.float32)
        padded[:, :d] = image
        return predict_unet(
            net,
            padded,
            slab_depth=slab_depth,
            stride=stride,
            device=device,
            amp=amp,
            slab_batch=slab_batch,
        )[:d]
    weights = tent_weights(slab_depth)[:, None, None]
    starts = slab_starts(d, slab_depth, stride)

    def run(batch: int) -> np.ndarray:
        acc = np.zeros((d, h, w), dtype=np.float32)
        norm = np.zeros((d, 1, 1), dtype=np.float32)
        for i in range(0, len(starts), batch):
            group = starts[i : i + batch]
            x = torch.from_numpy(
                np.stack([image[:, z0 : z0 + slab_depth] for z0 in group]).astype(
                    np.float32, copy=False
                )
            ).to(device)
            with _autocast(device, amp):
                logits = net(x)
            probs = torch.sigmoid(logits.float())[:, 0].cpu().numpy()
            for z0, prob in zip(group, probs, strict=True):
                acc[z0 : z0 + slab_depth] += prob * weights
                norm[z0 : z0 + slab_depth] += weights
        return acc / norm

    return halve_on_oom(run, slab_batch, "U-Net slabs per call")


@torch.no_grad()
def predict_deepmedic(
    net: nn.Module,
    image: np.ndarray,
    *,
    tile_depth: int = 64,
    device: torch.device | str = "cpu",
    amp: bool = True,
) -> np.ndarray:
    """Softmax tumour probabilities (D, H, W) float32, computed densely.

    Tiles of ``tile_depth`` output slices get ``net.z_halo`` slices of context on
    each side; because z is never pooled, the result equals a single pass over
    the whole volume.
    """
    device = torch.device(device)
    net.eval()
    _, d, _, _ = image.shape
    halo = int(getattr(net, "z_halo", 8))
    if tile_depth < 1:
        raise ValueError(f"tile_depth must be >= 1, got {tile_depth}")

    def run(tile: int) -> np.ndarray:
        out = np.zeros(image.shape[1:], dtype=np.float32)
        for z0 in range(0, d, tile):
            z1 = min(d, z0 + tile)
            a, b = max(0, z0 - halo), min(d, z1 + halo)
            x = torch.from_numpy(np.ascontiguousarray(image[None, :, a:b])).to(device)
            with _autocast(device, amp):
                logits = net(x)
            prob = torch.softmax(logits.float(), dim=1)[0, 1].cpu().numpy()
            out[z0:z1] = prob[z0 - a : z1 - a]
        return out

    return halve_on_oom(run, tile_depth, "DeepMedic slices per tile")


def predict_in_box(fn, image: np.ndarray, box: HeadBox | None, **kwargs) -> np.ndarray:
    """Run ``fn(net-less partial)`` on the in-plane crop ``box``; zeros outside."""
    if box is None:
        return fn(image, **kwargs)
    y0, x0, y1, x1 = box
    out = np.zeros(image.shape[1:], dtype=np.float32)
    out[:, y0:y1, x0:x1] = fn(np.ascontiguousarray(image[:, :, y0:y1, x0:x1]), **kwargs)
    return out
