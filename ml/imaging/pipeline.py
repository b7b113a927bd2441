"""``prepare_study``: DICOM upload -> the prepared-study directory (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ml.atomic import publish_dir, temp_dir_beside
from ml.imaging.dicom_io import IngestResult, Note, ingest, report_rows
from ml.imaging.errors import IngestError
from ml.imaging.grid import ImageGeometry, mask_to_model, model_grid_for, resample_to
from ml.imaging.intensity import head_mask_from_ct, model_input
from ml.imaging.qc import registration_figure
from ml.imaging.registration import RegistrationResult, bin_to, head_mask, register_mr_to_ct
from ml.presets import GridSpec, grid_preset

FORMAT_VERSION = 1


def _head_centre_xy(ct: sitk.Image) -> np.ndarray:
    """Centre of the head's bounding box (physical, x and y) from a coarse CT."""
    coarse = bin_to(sitk.Cast(ct, sitk.sitkFloat32), 4.0)  # an int16 CT: mean HU, not rounded
    head = head_mask(coarse, -400.0)  # named: an array view does not keep its image alive
    mask = sitk.GetArrayViewFromImage(head) > 0
    geom = ImageGeometry.of(coarse)
    idx = np.argwhere(mask)
    if len(idx) == 0:
        raise IngestError("no_ct", "the CT shows no head (nothing above -400 HU)")
    pts = geom.zyx_to_physical(idx)
    return (pts.min(axis=0) + pts.max(axis=0)) / 2.0


def _ct_reference_int16(ct: sitk.Image) -> sitk.Image:
    """The CT reference (``ct_reference.nii.gz``): HU rounded and clamped to -1024..3071,
    int16. An int16 CT (``load_series``) is already integral: clamped without a float
    copy."""
    if ct.GetPixelID() == sitk.sitkInt16:
        return sitk.Clamp(ct, sitk.sitkInt16, -1024, 3071)
    return sitk.Cast(sitk.Clamp(sitk.Round(ct), sitk.sitkFloat32, -1024, 3071), sitk.sitkInt16)


def _read_ground_truth(path: str | os.PathLike[str], ct: sitk.Image) -> sitk.Image:
    try:
        gt = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise IngestError(
            "bad_ground_truth", f"ground truth cannot be read ({exc})", file=str(path)
        ) from exc
    if gt.GetDimension() != 3 or gt.GetNumberOfComponentsPerPixel() != 1:
        raise IngestError(
            "bad_ground_truth", "ground truth must be a 3D single-channel mask", file=str(path)
        )
    if gt.GetSize() != ct.GetSize() or not np.allclose(gt.GetSpacing(), ct.GetSpacing(), rtol=1e-3):
        raise IngestError(
            "bad_ground_truth",
            f"ground truth grid {gt.GetSize()} @ {np.round(gt.GetSpacing(), 3).tolist()} mm does not "
            f"match the planning CT {ct.GetSize()} @ {np.round(ct.GetSpacing(), 3).tolist()} mm",
            file=str(path),
        )
    return gt


def _rtstruct_ground_truth(ing: IngestResult, roi_pattern: str | None) -> sitk.Image | None:
    """The lesion mask of the first structure set drawn on the planning CT, or None.
    Structure sets on other images are noted; if none fits the CT, the first refusal is
    raised (``rtstruct_frame_mismatch`` / ``rtstruct_series_mismatch``)."""
    from ml.imaging.rtstruct_import import import_rtstruct

    if roi_pattern is None or not ing.rtstructs:
        return None
    refusals: list[IngestError] = []
    for ds in ing.rtstructs:
        try:
            result = import_rtstruct(
                ds,
                ing.ct,
                ct_frame_uid=ing.ct_series.first.frame_uid,
                ct_series_uid=ing.ct_series.series_uid,
                roi_pattern=roi_pattern,
                name=f"RTSTRUCT {ds.get('StructureSetLabel', '')} ({ds.get('SOPInstanceUID', '')})",
            )
        except IngestError as exc:
            if exc.code not in ("rtstruct_frame_mismatch", "rtstruct_series_mismatch"):
                raise
            refusals.append(exc)
            continue
        report = result.report()
        if refusals:
            report["other_structure_sets"] = [exc.message for exc in refusals]
        ing.report["ground_truth"] = report  # type: ignore[assignment]
        return result.mask
    raise refusals[0]


def write_nifti_gz(img: sitk.Image, path: Path) -> None:
    """NIfTI, gzip level 1: ITK's writer ignores the level and takes ~2x longer on a
    512x512x160 CT (3.7 s against 1.7 s CPU). Deterministic (no gzip timestamp)."""
    raw = path.with_name(path.name.removesuffix(".gz") + ".tmp.nii")
    sitk.WriteImage(img, str(raw), False)
    try:
        with open(raw, "rb") as src, open(path, "wb") as f:
            with gzip.GzipFile(filename="", mode="wb", compresslevel=1, fileobj=f, mtime=0) as gz:
                shutil.copyfileobj(src, gz, length=4 * 1024 * 1024)
    finally:
        raw.unlink(missing_ok=True)


def prepare_study(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    grid: str = "lite",
    ground_truth: str | os.PathLike[str] | None = None,
    roi_pattern: str | None = None,
) -> dict[str, object]:
    """Ingest ``source`` (folder or zip), register, resample, normalise; write ``out_dir``.

    Ground truth: ``ground_truth`` (a NIfTI mask on the planning CT grid), else, with
    ``roi_pattern``, the ROIs of an RT Structure Set in the upload whose names match it
    (``ml.imaging.rtstruct_import``; ``report["ground_truth"]`` lists the ROIs included
    and ignored).

    Returns the content of ``study.json``. Raises ``IngestError`` for uploads it
    refuses; registration trouble is reported in ``study.json["registration"]``.
    The directory is built in a temporary sibling and renamed into place, so a
    failure never leaves a half-made ``out_dir`` (an existing one is replaced).
    """
    spec = grid_preset(grid)
    out = Path(out_dir)
    # Everything is built in a temporary sibling and renamed into place at the end.
    tmp = temp_dir_beside(out)
    try:
        meta = _prepare_into(source, tmp, spec, ground_truth, roi_pattern)
        publish_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def _prepare_into(
    source: str | os.PathLike[str],
    tmp: Path,
    spec: GridSpec,
    ground_truth: str | os.PathLike[str] | None,
    roi_pattern: str | None = None,
) -> dict[str, object]:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    ing: IngestResult = ingest(source)  # refuses impossible geometry and values too
    timings["ingest_s"] = time.perf_counter() - t0
    if ground_truth is not None:
        gt_img = _read_ground_truth(ground_truth, ing.ct)
    else:
        gt_img = _rtstruct_ground_truth(ing, roi_pattern)

    # The CT reference (an 80 MB gzip on planning CTs) is written in the background
    # while registration and pre-processing run; zlib releases the GIL.
    ct_i16 = _ct_reference_int16(ing.ct)
    with ThreadPoolExecutor(max_workers=1) as pool:
        ct_written = pool.submit(write_nifti_gz, ct_i16, tmp / "ct_reference.nii.gz")

        t = time.perf_counter()
        reg = register_mr_to_ct(ing.ct, ing.mr)
        timings["registration_s"] = time.perf_counter() - t

        t = time.perf_counter()
        model = model_grid_for(ing.ct, _head_centre_xy(ing.ct), spec)
        ct_hu = resample_to(ing.ct, model, default=-1024.0)
        mr = resample_to(ing.mr, model, transform=reg.transform, default=0.0)
        timings["resample_s"] = time.perf_counter() - t

        t = time.perf_counter()
        head = head_mask_from_ct(ct_hu, spacing_mm=spec.spacing_mm)
        x = model_input(mr, ct_hu, head)
        display_ct = np.clip(np.round(ct_hu), -1024, 3071).astype(np.int16)
        display_mr = np.clip(np.round(mr), 0, 32767).astype(np.int16)
        gt_model = mask_to_model(gt_img, model) if gt_img is not None else None
        timings["intensity_s"] = time.perf_counter() - t

        t = time.perf_counter()
        np.save(tmp / "model_input.npy", x)
        np.save(tmp / "display_mr.npy", display_mr)
        np.save(tmp / "display_ct.npy", display_ct)
        sitk.WriteTransform(reg.transform, str(tmp / "registration.tfm"))
        registration_figure(ct_hu, mr, head, model.spacing_mm, tmp / "registration_check.png")
        if gt_model is not None:
            np.save(tmp / "ground_truth.npy", gt_model)
        ct_written.result()
        timings["write_s"] = time.perf_counter() - t

    _warn_if_head_cut(head, spec, ing.report)
    timings["total_s"] = time.perf_counter() - t0
    meta = _study_meta(ing, model, spec, reg, head, gt_model is not None, timings)
    (tmp / "study.json").write_text(json.dumps(meta, indent=2))
    return meta


def _warn_if_head_cut(head: np.ndarray, spec: GridSpec, report: dict[str, list]) -> None:
    """A report warning when the head mask touches the model grid's in-plane edge."""
    edges = (head[:, 0, :], head[:, -1, :], head[:, :, 0], head[:, :, -1])
    if any(e.any() for e in edges):
        report.setdefault("warnings", []).append(
            f"the head reaches the edge of the {spec.name} model grid's "
            f"{spec.in_plane_size * spec.in_plane_spacing_mm:.0f} mm field of view; "
            "tissue beyond it is cut off"
        )


REGISTRATION_KINDS = ("registration", "registration_doubtful")
# Prefixes of RegistrationResult.message that the report's sentence already says.
_REGISTRATION_PREFIXES = ("registration looks wrong: ", "registration ")


def registration_note(reg: RegistrationResult, *, series: str | None = None) -> Note:
    """The report's one sentence about the MR to CT registration.

    Ok: ``MR to CT registration ok: rotation 8.4 deg, head Dice 0.997`` (the measures,
    once; ``reg.message`` says the same again and is left out). Not ok: ``MR to CT
    registration NOT ok: <what looks wrong, from reg.message>`` (its numbers are in the
    problems it lists). Kind ``registration`` or ``registration_doubtful``.
    """
    q = reg.quality
    if reg.ok:
        text = (
            f"MR to CT registration ok: rotation {q.get('rotation_deg', float('nan')):.1f} deg, "
            f"head Dice {q.get('head_dice', float('nan')):.3f}"
        )
        return Note("registration", text, series=series)
    why = reg.message or "no reason given"
    for prefix in _REGISTRATION_PREFIXES:
        if why.startswith(prefix):
            why = why[len(prefix) :]
            break
    return Note("registration_doubtful", f"MR to CT registration NOT ok: {why}", series=series)


def _study_meta(
    ing: IngestResult,
    model: ImageGeometry,
    spec: GridSpec,
    reg: RegistrationResult,
    head: np.ndarray,
    has_ground_truth: bool,
    timings: dict[str, float],
) -> dict[str, object]:
    """The content of ``study.json`` (docs/ARCHITECTURE.md)."""
    warnings = ing.report.setdefault("warnings", [])
    # One registration line per report, even if the report is built again.
    warnings[:] = [w for w in warnings if getattr(w, "kind", "") not in REGISTRATION_KINDS]
    warnings.append(registration_note(reg, series=ing.mr_series.series_uid))
    ing.report["rows"] = report_rows(ing.report)
    return {
        "format_version": FORMAT_VERSION,
        "grid": {**model.to_dict(), "preset": spec.name, "network_preset": spec.network_preset},
        "ct_geometry": ImageGeometry.of(ing.ct).to_dict(),
        "mr_geometry": ImageGeometry.of(ing.mr).to_dict(),
        "registration": {
            "transform": reg.transform_dict(),
            "quality": reg.quality,
            "ok": bool(reg.ok),
            "message": reg.message,
            "figure": "registration_check.png",
            "transform_file": "registration.tfm",
        },
        "dicom": ing.dicom,
        "report": ing.report,
        "head_voxels": int(head.sum()),
        "has_ground_truth": has_ground_truth,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
