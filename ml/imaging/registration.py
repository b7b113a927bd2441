"""Rigid MR -> CT registration (the CT is the reference).

Mattes mutual information, a three-level pyramid, an Euler (rigid) transform
initialised from the centres of mass of the two heads (image moments of the head
masks, top of the head only so that different neck coverage does not bias it).
The CT is binned to about 1.5 mm first: registration does not need the 0.5 mm
planning grid, and the metric is sampled inside the CT head only.

The result says whether the registration is believable. A registration that fails
does not raise: ``ok`` is false with a message, and the platform flags the study.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

WORK_SPACING_MM = 1.5
MAX_ROTATION_DEG = 30.0
MAX_SHIFT_FROM_INIT_MM = 40.0
MIN_HEAD_DICE = 0.85
MAX_METRIC = -0.05  # Mattes MI is negative; near zero means no shared information
SEED = 20240611
SAMPLES_PER_LEVEL = (5000, 10000, 25000)
SIGMAS_MM = (4.0, 2.0, 0.0)
# Regular-step gradient descent. Rotations are scaled as the shift they cause
# ROTATION_RADIUS_MM from the centre: the physical-shift estimate over the whole field
# of view makes rotation steps so small that the optimizer crawls along the
# rotation/translation valley and runs out of iterations (measured on synthetic pairs:
# 600 iterations and 1.5-3 deg error, against ~120 iterations and < 0.7 deg with this).
LEARNING_RATE = 2.0
MIN_STEP = 1e-3
MAX_ITERATIONS_PER_LEVEL = 200
RELAXATION = 0.6
ROTATION_RADIUS_MM = 30.0


@dataclass
class RegistrationResult:
    transform: sitk.Euler3DTransform  # maps CT (fixed) points to MR (moving) points
    ok: bool
    message: str
    quality: dict[str, float | int | str] = field(default_factory=dict)

    def transform_dict(self) -> dict[str, object]:
        return euler_to_dict(self.transform)


def euler_to_dict(t: sitk.Euler3DTransform) -> dict[str, object]:
    """A JSON record of a rigid CT->MR transform (inverse: ``transform_from_dict``)."""
    m = np.asarray(t.GetMatrix()).reshape(3, 3)
    return {
        "type": "Euler3DTransform",
        "maps": "ct_to_mr",
        "center_xyz_mm": list(t.GetCenter()),
        "angles_rad": [t.GetAngleX(), t.GetAngleY(), t.GetAngleZ()],
        "translation_xyz_mm": list(t.GetTranslation()),
        "matrix": [float(v) for v in m.ravel()],
        "offset_xyz_mm": [float(v) for v in t.TransformPoint((0.0, 0.0, 0.0))],
    }


def transform_from_dict(d: dict) -> sitk.Euler3DTransform:
    t = sitk.Euler3DTransform()
    t.SetCenter([float(v) for v in d["center_xyz_mm"]])
    t.SetRotation(*[float(a) for a in d["angles_rad"]])
    t.SetTranslation([float(v) for v in d["translation_xyz_mm"]])
    return t


def rotation_angle_deg(matrix: np.ndarray) -> float:
    m = np.asarray(matrix, dtype=float).reshape(3, 3)
    return float(np.degrees(np.arccos(np.clip((np.trace(m) - 1.0) / 2.0, -1.0, 1.0))))


def bin_to(img: sitk.Image, spacing_mm: float) -> sitk.Image:
    """Average-bin by integer factors so that no axis is finer than ``spacing_mm``."""
    if spacing_mm <= 0:
        return img
    factors = [max(1, int(round(spacing_mm / s))) for s in img.GetSpacing()]
    return sitk.BinShrink(img, factors) if max(factors) > 1 else img


def head_mask(img: sitk.Image, threshold: float, mask_spacing_mm: float = 3.0) -> sitk.Image:
    """The head (outer surface, holes filled) as a uint8 mask on ``img``'s grid.

    Computed on a ~3 mm copy (filling holes slice by slice along three axes is slow at
    full resolution) and brought back by nearest neighbour.
    """
    coarse = bin_to(img, mask_spacing_mm)
    if coarse is not img:
        small = head_mask(coarse, threshold, mask_spacing_mm=0.0)
        return sitk.Resample(
            small, img, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8
        )
    arr = sitk.GetArrayViewFromImage(img) > threshold
    arr = ndimage.binary_opening(arr, iterations=1)
    lab, n = ndimage.label(arr)
    if n > 1:
        sizes = ndimage.sum_labels(arr, lab, index=np.arange(1, n + 1))
        arr = lab == (int(np.argmax(sizes)) + 1)
    # Fill slice by slice along each axis: the skull base leaves openings in 3D.
    for axis in range(3):
        arr = np.stack([ndimage.binary_fill_holes(s) for s in np.moveaxis(arr, axis, 0)], axis=axis)
    out = sitk.GetImageFromArray(arr.astype(np.uint8))
    out.CopyInformation(img)
    return out


def _otsu(values: np.ndarray) -> float:
    hist, edges = np.histogram(values, bins=256)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres) / np.maximum(w0, 1)
    m1 = (np.sum(hist * centres) - np.cumsum(hist * centres)) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(centres[int(np.argmax(between))])


def _top_of_head_centroid(mask: sitk.Image, depth_mm: float = 110.0) -> np.ndarray:
    """Physical centroid of the mask's voxels within ``depth_mm`` of the vertex."""
    idx = np.argwhere(sitk.GetArrayViewFromImage(mask) > 0)[:, ::-1].astype(float)  # x, y, z
    if len(idx) == 0:
        raise ValueError("empty head mask")
    d = np.asarray(mask.GetDirection()).reshape(3, 3)
    pts = np.asarray(mask.GetOrigin()) + (idx * np.asarray(mask.GetSpacing())) @ d.T
    top = pts[:, 2].max()  # LPS: +z is superior
    sel = pts[pts[:, 2] > top - depth_mm]
    return sel.mean(axis=0)


def _crop_to_mask(
    img: sitk.Image, mask: sitk.Image, margin_mm: float
) -> tuple[sitk.Image, sitk.Image]:
    idx = np.argwhere(sitk.GetArrayViewFromImage(mask) > 0)
    if len(idx) == 0:
        return img, mask
    size_zyx = np.asarray(sitk.GetArrayViewFromImage(mask).shape)
    pad = np.ceil(margin_mm / np.asarray(img.GetSpacing())[::-1]).astype(int)
    lo = np.maximum(idx.min(axis=0) - pad, 0)
    hi = np.minimum(idx.max(axis=0) + pad + 1, size_zyx)
    start = [int(v) for v in lo[::-1]]
    size = [int(v) for v in (hi - lo)[::-1]]
    return sitk.RegionOfInterest(img, size, start), sitk.RegionOfInterest(mask, size, start)


def _working_images(
    ct: sitk.Image, mr: sitk.Image
) -> tuple[sitk.Image, sitk.Image, sitk.Image, sitk.Image]:
    """``(fixed, moving, fixed_mask, moving_mask)`` on the ~1.5 mm working grids.

    The CT is clamped to [-1000, 2000] HU and cropped to its head (+10 mm); the
    masks are uint8 heads (CT above -400 HU, MR above half its Otsu threshold).
    """
    fixed = sitk.Clamp(
        bin_to(sitk.Cast(ct, sitk.sitkFloat32), WORK_SPACING_MM), sitk.sitkFloat32, -1000.0, 2000.0
    )
    moving = bin_to(sitk.Cast(mr, sitk.sitkFloat32), WORK_SPACING_MM)
    fixed_mask = head_mask(fixed, -400.0)
    # Crop the CT to the head: fewer voxels to smooth and sample per level.
    fixed, fixed_mask = _crop_to_mask(fixed, fixed_mask, margin_mm=10.0)
    moving_mask = head_mask(moving, _otsu(sitk.GetArrayViewFromImage(moving).ravel()[::7]) * 0.5)
    return fixed, moving, fixed_mask, moving_mask


def _moments_init(
    fixed_mask: sitk.Image, moving_mask: sitk.Image
) -> tuple[sitk.Euler3DTransform, np.ndarray, np.ndarray]:
    """The initial transform (a shift aligning the tops of the heads) and both centres (mm)."""
    c_fixed = _top_of_head_centroid(fixed_mask)
    c_moving = _top_of_head_centroid(moving_mask)
    init = sitk.Euler3DTransform()
    init.SetCenter([float(v) for v in c_fixed])
    init.SetTranslation([float(v) for v in (c_moving - c_fixed)])
    return init, c_fixed, c_moving


def _pyramid(fixed: sitk.Image) -> list[tuple[int, float, int]]:
    """``(shrink factor, smoothing sigma mm, samples)`` per level, coarse to fine."""
    coarsest = max(fixed.GetSpacing())
    levels = [
        (max(1, int(round(8.0 / coarsest))), SIGMAS_MM[0], SAMPLES_PER_LEVEL[0]),
        (max(1, int(round(4.0 / coarsest))), SIGMAS_MM[1], SAMPLES_PER_LEVEL[1]),
        (1, SIGMAS_MM[2], SAMPLES_PER_LEVEL[2]),
    ]
    # On coarse images (tiny grids) two levels can land on the native resolution: keep
    # only the last of those, a repeated level costs time and adds nothing.
    return [lv for i, lv in enumerate(levels) if i == len(levels) - 1 or lv[0] > levels[i + 1][0]]


def _set_metric(
    reg: sitk.ImageRegistrationMethod, fixed_mask: sitk.Image, levels: list[tuple[int, float, int]]
) -> None:
    """Mattes MI sampled at a fixed number of points per level inside the CT head."""
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=48)
    # A fixed number of samples per level: enough for sub-millimetre accuracy, and the
    # cost no longer grows with the CT's resolution.
    metric_mask = sitk.BinaryDilate(fixed_mask, [2, 2, 2])
    n_mask = max(int(np.count_nonzero(sitk.GetArrayViewFromImage(metric_mask))), 1)
    percentages = [float(min(1.0, n * f**3 / n_mask)) for f, _s, n in levels]
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentagePerLevel(percentages, SEED)
    reg.SetMetricFixedMask(metric_mask)
    reg.SetInterpolator(sitk.sitkLinear)
    # Gradients only at the sample points, not whole gradient images per level.
    reg.MetricUseFixedImageGradientFilterOff()
    reg.MetricUseMovingImageGradientFilterOff()


def _registration_method(
    fixed: sitk.Image, fixed_mask: sitk.Image, init: sitk.Euler3DTransform
) -> sitk.ImageRegistrationMethod:
    """The configured registration: metric, optimizer, pyramid and initial transform."""
    levels = _pyramid(fixed)
    reg = sitk.ImageRegistrationMethod()
    _set_metric(reg, fixed_mask, levels)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=LEARNING_RATE,
        minStep=MIN_STEP,
        numberOfIterations=MAX_ITERATIONS_PER_LEVEL,
        relaxationFactor=RELAXATION,
        gradientMagnitudeTolerance=1e-6,
    )
    r2 = ROTATION_RADIUS_MM**2
    reg.SetOptimizerScales([r2, r2, r2, 1.0, 1.0, 1.0])
    reg.SetShrinkFactorsPerLevel([lv[0] for lv in levels])
    reg.SetSmoothingSigmasPerLevel([lv[1] for lv in levels])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(init, inPlace=False)
    return reg


def _execute(
    reg: sitk.ImageRegistrationMethod, fixed: sitk.Image, moving: sitk.Image
) -> tuple[sitk.Transform, int]:
    """Run the registration; its output transform and the optimizer iterations.

    ``RuntimeError`` from SimpleITK when it cannot run.
    """
    iterations = 0

    def count() -> None:
        nonlocal iterations
        iterations += 1

    reg.AddCommand(sitk.sitkIterationEvent, count)
    out = reg.Execute(fixed, moving)
    return out, iterations


def _head_dice(fixed_mask: sitk.Image, moving_mask: sitk.Image, final: sitk.Transform) -> float:
    """Dice of the two heads after registration, where both fields of view cover."""
    warped = sitk.Resample(moving_mask, fixed_mask, final, sitk.sitkNearestNeighbor, 0)
    cover = sitk.Resample(
        sitk.Image(moving_mask.GetSize(), sitk.sitkUInt8) + 1, fixed_mask, final,
        sitk.sitkNearestNeighbor, 0,
    )  # fmt: skip
    a = sitk.GetArrayViewFromImage(fixed_mask) > 0
    b = sitk.GetArrayViewFromImage(warped) > 0
    c = sitk.GetArrayViewFromImage(cover) > 0
    denom = int((a & c).sum() + (b & c).sum())
    return 2.0 * int((a & b & c).sum()) / denom if denom else 0.0


def _problems(metric: float, dice: float, rot: float, shift_from_init: float) -> list[str]:
    """What makes the registration implausible (empty when it looks right)."""
    problems = []
    if metric > MAX_METRIC:
        problems.append(f"mutual information too low ({metric:.3f} > {MAX_METRIC})")
    if dice < MIN_HEAD_DICE:
        problems.append(
            f"heads overlap poorly after registration (Dice {dice:.2f} < {MIN_HEAD_DICE})"
        )
    if rot > MAX_ROTATION_DEG:
        problems.append(f"implausible rotation of {rot:.1f} deg (> {MAX_ROTATION_DEG})")
    if shift_from_init > MAX_SHIFT_FROM_INIT_MM:
        problems.append(
            f"implausible shift of {shift_from_init:.0f} mm from the head-centre alignment "
            f"(> {MAX_SHIFT_FROM_INIT_MM:.0f} mm)"
        )
    return problems


def register_mr_to_ct(ct: sitk.Image, mr: sitk.Image) -> RegistrationResult:
    """Rigidly register ``mr`` to ``ct``; the returned transform maps CT points to MR."""
    fixed, moving, fixed_mask, moving_mask = _working_images(ct, mr)
    init, c_fixed, c_moving = _moments_init(fixed_mask, moving_mask)
    reg = _registration_method(fixed, fixed_mask, init)
    try:
        out, iterations = _execute(reg, fixed, moving)
    except RuntimeError as exc:
        return RegistrationResult(init, False, f"registration failed to run: {exc}", {})
    final = sitk.Euler3DTransform(sitk.CompositeTransform(out).GetNthTransform(0))
    metric = float(reg.GetMetricValue())
    dice = _head_dice(fixed_mask, moving_mask, final)
    rot = rotation_angle_deg(np.asarray(final.GetMatrix()))
    shift_from_init = float(
        np.linalg.norm(np.asarray(final.TransformPoint(tuple(c_fixed))) - c_moving)
    )
    quality: dict[str, float | int | str] = {
        "metric": "mattes_mutual_information",
        "final_metric": metric,
        "head_dice": float(dice),
        "iterations": iterations,
        "rotation_deg": rot,
        "translation_mm": float(np.linalg.norm(final.GetTranslation())),
        "shift_from_moments_init_mm": shift_from_init,
        "optimizer_stop": reg.GetOptimizerStopConditionDescription()[:200],
        "work_spacing_mm": [float(v) for v in fixed.GetSpacing()],
    }
    problems = _problems(metric, dice, rot, shift_from_init)
    if problems:
        msg = "registration looks wrong: " + "; ".join(problems) + ". Check the MR-CT overlay."
        return RegistrationResult(final, False, msg, quality)
    return RegistrationResult(
        final,
        True,
        f"rigid MR->CT registration ok (head Dice {dice:.2f}, rotation {rot:.1f} deg)",
        quality,
    )
