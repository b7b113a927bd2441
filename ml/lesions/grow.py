"""Click to add: a lesion grown from one clicked voxel, limited to a ball around it.

The clinician clicks on a lesion the model missed; ``grow_from_click`` proposes its
contour. Everything happens inside the ball ``B`` of radius ``radius_mm`` around the
click (voxel centres within ``radius_mm``, anisotropic spacing honoured), cropped to
its bounding box, so the cost does not depend on the study's size.

Two sources, tried in this order:

1. ``probability`` (the model's ensemble probability map, (D, H, W) in [0, 1]): within
   the search ball ``S`` (radius ``search_mm`` around the click; when nothing is found,
   twice that, if it stays within half the radius) take the peak ``p*`` and
   its voxel. If ``p* >= prob_floor`` the lesion is the voxels of ``B`` with
   ``p >= max(prob_fraction * p*, prob_min)``, connected to the peak voxel.
2. ``image`` (the contrast T1 MR on the model grid; metastases enhance, i.e. are
   brighter than brain): the peak voxel is the brightest raw voxel next to the maximum
   of the 3x3x3-mean smoothed image in ``S`` (a click in a dark necrotic core still
   finds the enhancing rim; a one-voxel lesion keeps its voxel), ``I*`` its intensity;
   the background ``b`` is the median of the ball of radius ``max(radius_mm,
   background_mm)`` around the click without drawn lesions (a lesion fills well under
   half of it, even one larger than ``B``), ``sigma`` the noise there
   (``background_stats``). Unless ``I* - b >= max(min_contrast_sigma * sigma,
   min_contrast_ratio * b)`` (an enhancing lesion is well above noise and at least a
   quarter brighter than brain; white matter next to grey matter is not) nothing is
   proposed. Otherwise the threshold is the half maximum ``t = b + image_fraction *
   (I* - b)`` (the 50 % edge of a blurred step, as for full width at half maximum), and
   the lesion is the voxels of ``B`` with intensity ``>= t`` connected (6-connectivity,
   so a touching vessel leaks less) to the peak voxel.

Either way the grown component's enclosed holes are filled (a necrotic core belongs to
the lesion, as in the ground truth), voxels in ``exclude`` (lesions already on the
mask) are removed, and the connected part holding the seed is kept.

Shapes and units: volumes are (D, H, W) = (z, y, x); ``seed_zyx`` a voxel index;
``spacing_mm`` (z, y, x) in mm; ``radius_mm`` / ``search_mm`` in mm. The result's mask is
bool on the box ``bbox`` (z0, y0, x0, z1, y1, x1; exclusive ends) of the whole grid.
``ValueError`` for a seed outside the volume, a non-positive radius or spacing, or no
volume at all; ``None`` when nothing grows (no peak, too little contrast, or only
excluded voxels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GrowConfig:
    """Tuning of ``grow_from_click`` (see the module docstring for the formulas)."""

    search_mm: float = 4.0
    prob_floor: float = 0.2
    prob_fraction: float = 0.5
    prob_min: float = 0.1
    image_fraction: float = 0.5
    min_contrast_sigma: float = 4.0
    min_contrast_ratio: float = 0.15
    background_mm: float = 25.0
    plateau_min_vox: int = 8

    def __post_init__(self) -> None:
        for name in ("prob_fraction", "image_fraction"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}")
        if self.search_mm < 0 or self.min_contrast_sigma < 0:
            raise ValueError("search_mm and min_contrast_sigma must be >= 0")


@dataclass(frozen=True)
class GrownLesion:
    """A proposed lesion: ``mask`` (bool, the box's shape) on ``bbox`` of the grid."""

    mask: np.ndarray
    bbox: tuple[int, int, int, int, int, int]
    method: str  # "probability" | "image"
    seed_zyx: tuple[int, int, int]  # the peak voxel the lesion was grown from
    threshold: float  # in the source's unit (probability, or MR signal)

    @property
    def volume_vox(self) -> int:
        return int(np.count_nonzero(self.mask))


def _ball_on(
    shape: Sequence[int], centre: Sequence[int], spacing_mm: Sequence[float], radius_mm: float
) -> np.ndarray:
    """bool ``shape``: voxel centres within ``radius_mm`` of voxel ``centre``."""
    axes = [
        ((np.arange(n) - c) * s) ** 2 for n, c, s in zip(shape, centre, spacing_mm, strict=True)
    ]
    d2 = axes[0][:, None, None] + axes[1][None, :, None] + axes[2][None, None, :]
    return d2 <= radius_mm**2


def ball_box(
    seed_zyx: Sequence[int], shape: Sequence[int], spacing_mm: Sequence[float], radius_mm: float
) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """The bounding box (slices) of the ball of ``radius_mm`` around ``seed_zyx``, clipped
    to ``shape``, and the ball itself on that box (bool; voxel centres within radius)."""
    box = []
    for c, n, s in zip(seed_zyx, shape, spacing_mm, strict=True):
        r = int(np.floor(radius_mm / s))
        box.append(slice(max(0, c - r), min(n, c + r + 1)))
    local = [c - b.start for c, b in zip(seed_zyx, box, strict=True)]
    size = [b.stop - b.start for b in box]
    return tuple(box), _ball_on(size, local, spacing_mm, radius_mm)  # type: ignore[return-value]


def _check(
    seed_zyx: Sequence[int], shape: Sequence[int], spacing_mm: Sequence[float], radius_mm: float
) -> tuple[int, int, int]:
    seed = tuple(int(v) for v in seed_zyx)
    if len(seed) != 3 or len(shape) != 3:
        raise ValueError(f"seed and volume must be 3D, got {seed_zyx!r} in {tuple(shape)}")
    if not all(0 <= c < n for c, n in zip(seed, shape, strict=True)):
        raise ValueError(f"seed {list(seed)} is outside the volume {list(shape)} (z, y, x)")
    if len(spacing_mm) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing_mm):
        raise ValueError(f"spacing_mm must be three positive numbers, got {spacing_mm!r}")
    if not (np.isfinite(radius_mm) and radius_mm > 0):
        raise ValueError(f"radius_mm must be positive, got {radius_mm!r}")
    return seed  # type: ignore[return-value]


def _peak(values: np.ndarray, where: np.ndarray) -> tuple[float, tuple[int, ...]]:
    """The maximum of ``values`` over ``where`` and its (first) index."""
    masked = np.where(where, values, -np.inf)
    flat = int(np.argmax(masked))
    return float(masked.flat[flat]), np.unravel_index(flat, values.shape)


def _component_with(region: np.ndarray, seed: tuple[int, ...]) -> np.ndarray:
    """The 6-connected component of ``region`` holding ``seed`` (empty if seed is off)."""
    from scipy import ndimage

    if not region[seed]:
        return np.zeros_like(region)
    labels, _ = ndimage.label(region)
    return labels == labels[seed]


def _grow_probability(
    prob: np.ndarray,
    ball: np.ndarray,
    search: np.ndarray,
    config: GrowConfig,
    stats: tuple[float, float, float],
) -> tuple[np.ndarray, tuple[int, ...], float] | None:
    peak, at = _peak(prob.astype(np.float32), search)
    if not np.isfinite(peak) or peak < config.prob_floor:
        return None
    threshold = max(config.prob_fraction * peak, config.prob_min)
    return _component_with(ball & (prob >= threshold), at), at, threshold


def _image_seed(
    image: np.ndarray, search: np.ndarray, allowed: np.ndarray
) -> tuple[int, ...] | None:
    """The brightest raw voxel of ``search`` next to (3x3x3) the peak of the 3x3x3-mean
    smoothed image in ``search``: the smoothing finds the lesion (a dark necrotic core,
    one noisy voxel), the raw maximum keeps a one-voxel lesion its own voxel."""
    from scipy import ndimage

    smooth = ndimage.uniform_filter(image.astype(np.float32), size=3, mode="nearest")
    peak, at = _peak(smooth, search)
    if not np.isfinite(peak):
        return None
    near = tuple(slice(max(0, c - 1), c + 2) for c in at)
    _, local = _peak(image[near].astype(np.float32), allowed[near])
    return tuple(int(n.start + v) for n, v in zip(near, local, strict=True))


def background_stats(
    image: np.ndarray,
    seed_zyx: Sequence[int],
    spacing_mm: Sequence[float],
    radius_mm: float,
    exclude: np.ndarray | None = None,
) -> tuple[float, float, float]:
    """``(b, sigma, upper)`` over the ball of ``radius_mm`` around the seed, without
    ``exclude``d (drawn) voxels: ``b`` the median of ``image``, ``upper`` its 75th
    percentile (the brighter normal tissue, e.g. white matter beside grey), ``sigma`` the
    noise, 1.4826 x the median absolute deviation of the high-pass residual
    ``image - mean3x3x3`` times sqrt(27 / 26) (the residual of white noise has variance
    26/27 of it), which tissue boundaries and the lesion itself barely move."""
    from scipy import ndimage

    box, ball = ball_box(seed_zyx, image.shape, spacing_mm, radius_mm)
    if exclude is not None:
        ball &= np.asarray(exclude[box]) == 0
    values = np.asarray(image[box], dtype=np.float32)
    inside = values[ball].astype(np.float64)
    if inside.size == 0:
        return float("nan"), float("nan"), float("nan")
    residual = (values - ndimage.uniform_filter(values, size=3, mode="nearest"))[ball]
    noise = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    median, upper = (float(v) for v in np.percentile(inside, [50, 75]))
    return median, noise * float(np.sqrt(27 / 26)), upper


def _grow_image(
    image: np.ndarray,
    ball: np.ndarray,
    search: np.ndarray,
    config: GrowConfig,
    stats: tuple[float, float, float],
) -> tuple[np.ndarray, tuple[int, ...], float] | None:
    at = _image_seed(image, search, ball)
    background, sigma, upper = stats
    if at is None or not np.isfinite(background):
        return None
    peak = float(image[at])
    needed = max(config.min_contrast_sigma * sigma, config.min_contrast_ratio * abs(upper))
    if peak - background <= 0 or peak - upper < needed:
        return None
    first = background + config.image_fraction * (peak - background)
    region = _component_with(ball & (image >= first), at)
    # The brightest voxel overstates the plateau (noise, texture): the edge is half-way
    # to the region's median instead, once there are enough voxels to take one.
    plateau = peak
    if np.count_nonzero(region) >= config.plateau_min_vox:
        plateau = min(peak, float(np.median(image[region])))
    threshold = background + config.image_fraction * (plateau - background)
    return _component_with(ball & (image >= threshold), at), at, threshold


def grow_from_click(
    *,
    seed_zyx: Sequence[int],
    spacing_mm: Sequence[float],
    radius_mm: float = 20.0,
    prob: np.ndarray | None = None,
    image: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
    config: GrowConfig | None = None,
) -> GrownLesion | None:
    """Propose the lesion under the click ``seed_zyx`` (see the module docstring).

    ``prob`` / ``image`` / ``exclude``: (D, H, W) arrays of one shape (NumPy memmaps are
    fine: only the ball's box is read); at least one of ``prob`` and ``image``.
    Returns ``None`` when nothing grows; ``ValueError`` on bad input.
    """
    config = config or GrowConfig()
    volume = prob if prob is not None else image
    if volume is None:
        raise ValueError("grow_from_click needs a probability map or an image")
    seed = _check(seed_zyx, volume.shape, spacing_mm, radius_mm)
    box, ball = ball_box(seed, volume.shape, spacing_mm, radius_mm)
    local = tuple(c - b.start for c, b in zip(seed, box, strict=True))
    keep = None if exclude is None else np.asarray(exclude[box]) == 0
    allowed = ball if keep is None else ball & keep  # never on a lesion already drawn
    sources = [
        (method, np.asarray(source[box]), grow)
        for method, source, grow in (
            ("probability", prob, _grow_probability),
            ("image", image, _grow_image),
        )
        if source is not None
    ]
    stats = (float("nan"), float("nan"), float("nan"))
    if image is not None:
        stats = background_stats(
            image, seed, spacing_mm, max(radius_mm, config.background_mm), exclude
        )
    for search_mm in _search_radii(config.search_mm, radius_mm):
        search = allowed & _ball_on(ball.shape, local, spacing_mm, search_mm)
        for method, values, grow in sources:
            grown = grow(values, allowed, search, config, stats)
            if grown is None:
                continue
            region, at, threshold = grown
            region = _finish(region, keep, at)
            if region.any():
                return _crop(region, box, method, at, threshold)
    return None


def _search_radii(search_mm: float, radius_mm: float) -> list[float]:
    """``search_mm``, then doubling (a click in a large necrotic core) while the search
    stays within 0.8 of the ball's radius."""
    radii = [min(search_mm, radius_mm)]
    while radii[-1] * 2 <= 0.8 * radius_mm:
        radii.append(radii[-1] * 2)
    return radii


def _finish(region: np.ndarray, keep: np.ndarray | None, at: tuple[int, ...]) -> np.ndarray:
    """Holes filled (in 3D, then on each axial slice: a necrotic core whose rim is open
    on one slice is still closed on the others), excluded voxels removed, the part
    connected to ``at`` kept."""
    from scipy import ndimage

    idx = np.nonzero(region)
    if idx[0].size == 0:
        return region
    # Work on the region's own box (the ball's box is mostly background).
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in idx)
    crop = ndimage.binary_fill_holes(region[box])
    for z in np.flatnonzero(crop.any(axis=(1, 2))):
        crop[z] = ndimage.binary_fill_holes(crop[z])
    if keep is not None:
        crop &= keep[box]
    out = np.zeros_like(region)
    local = tuple(a - b.start for a, b in zip(at, box, strict=True))
    if all(0 <= v < c.stop - c.start for v, c in zip(local, box, strict=True)):
        out[box] = _component_with(crop, local)
    return out


def _crop(
    region: np.ndarray,
    box: tuple[slice, ...],
    method: str,
    at: tuple[int, ...],
    threshold: float,
) -> GrownLesion:
    """The grown region cropped to its own bounding box, in whole-grid coordinates."""
    idx = np.nonzero(region)
    lo = [int(i.min()) for i in idx]
    hi = [int(i.max()) + 1 for i in idx]
    mask = region[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]].copy()
    start = [b.start for b in box]
    bbox = tuple(s + v for s, v in zip(start + start, lo + hi, strict=True))
    seed = tuple(int(s + a) for s, a in zip(start, at, strict=True))
    return GrownLesion(
        mask=mask,
        bbox=bbox,  # type: ignore[arg-type]
        method=method,
        seed_zyx=seed,  # type: ignore[arg-type]
        threshold=float(threshold),
    )


def run_lengths(mask: np.ndarray) -> list[int]:
    """Run lengths of ``mask`` flattened in C order (z, then y, then x fastest),
    alternating outside / inside and starting with outside (a leading 0 when the first
    voxel is inside); they sum to ``mask.size``. How a proposal travels as JSON."""
    flat = np.asarray(mask, dtype=bool).ravel()
    if flat.size == 0:
        return []
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate(([0], edges, [flat.size]))).tolist()
    return [0, *runs] if flat[0] else runs
