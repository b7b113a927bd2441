"""A registration check figure: CT and registered MR as a checkerboard, three planes.

Misregistration shows as steps in the skull and brain outline at the tile borders;
the viewer and reviewers look at it when ``registration.ok`` is false.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def _norm(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (np.clip((a - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)


def _checker(a: np.ndarray, b: np.ndarray, tiles: int = 8) -> np.ndarray:
    h, w = a.shape
    yy, xx = np.mgrid[0:h, 0:w]
    sel = ((yy * tiles // max(h, 1)) + (xx * tiles // max(w, 1))) % 2 == 0
    return np.where(sel, a, b)


def registration_figure(
    ct_hu: np.ndarray,
    mr: np.ndarray,
    head: np.ndarray,
    spacing_mm: tuple[float, float, float],
    path: Path,
    *,
    size_px: int = 256,
) -> None:
    """Write a PNG: axial, coronal, sagittal planes through the head's centre of mass."""
    if head.any():
        # Centre of mass from the marginal sums: cheap even on a 512x512 grid.
        cz, cy, cx = (
            int(round(float(np.average(np.arange(n), weights=head.sum(axis=axes)))))
            for n, axes in (
                (head.shape[0], (1, 2)),
                (head.shape[1], (0, 2)),
                (head.shape[2], (0, 1)),
            )
        )
    else:
        cz, cy, cx = (s // 2 for s in ct_hu.shape)
    planes_ct = (ct_hu[cz], ct_hu[:, cy][::-1], ct_hu[:, :, cx][::-1])
    planes_mr = (mr[cz], mr[:, cy][::-1], mr[:, :, cx][::-1])
    inside = np.concatenate(
        [
            p[h]
            for p, h in zip(
                planes_mr, (head[cz], head[:, cy][::-1], head[:, :, cx][::-1]), strict=True
            )
        ]
    )
    mr_lo, mr_hi = np.percentile(inside, (1, 99)) if inside.size else (0.0, 1.0)
    sz, sy, sx = spacing_mm
    planes = [
        (_norm(c, -100.0, 200.0), _norm(m, float(mr_lo), float(mr_hi)), row, col)
        for c, m, (row, col) in zip(
            planes_ct, planes_mr, ((sy, sx), (sz, sx), (sz, sy)), strict=True
        )
    ]
    tiles = []
    for a, b, row_mm, col_mm in planes:
        img = Image.fromarray(_checker(a, b))
        h_mm, w_mm = a.shape[0] * row_mm, a.shape[1] * col_mm
        scale = size_px / max(h_mm, w_mm)
        img = img.resize((max(1, round(w_mm * scale)), max(1, round(h_mm * scale))), Image.BILINEAR)
        canvas = Image.new("L", (size_px, size_px))
        canvas.paste(img, ((size_px - img.width) // 2, (size_px - img.height) // 2))
        tiles.append(np.asarray(canvas))
    Image.fromarray(np.concatenate(tiles, axis=1)).save(path, optimize=False)
