"""``generate_study``: a synthetic planning CT + contrast T1 MR pair as real DICOM.

The same analytic head (``phantom.py``) is imaged twice: by a CT (axial, the
reference frame) and by an MR in a second session, where the head has moved by a
known rigid transform and the scanner uses its own grid (spacing, field of view,
slice thickness, axial or sagittal slices). Ground truth is evaluated analytically
on the CT grid. Everything is drawn from one ``numpy`` generator seeded by ``seed``,
and UIDs are derived from the seed, so a seed always gives byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ml.atomic import publish_dir
from ml.imaging.registration import euler_to_dict
from ml.presets import grid_preset
from ml.synthetic.dicom_writer import stable_uid, write_series
from ml.synthetic.geometry import AXIAL, SAGITTAL, Geometry
from ml.synthetic.phantom import BOX_MIN_MM, Lesion, PhantomGrid, paint_head, place_lesions

GENERATOR_VERSION = 3


@dataclass(frozen=True)
class Acquisition:
    """How big the synthetic scans are for a grid preset."""

    phantom_mm: float
    ct_in_plane: int
    ct_pixel_mm: tuple[float, float]
    ct_slice_mm: tuple[float, float]
    ct_slices: int | None  # None: enough slices to cover the head
    mr_in_plane: int
    mr_pixel_mm: tuple[float, float]
    mr_slice_mm: tuple[float, float]
    mr_slices: int | None
    min_lesion_mm3: float
    max_lesion_mm3: float = 30000.0


ACQUISITIONS: dict[str, Acquisition] = {
    # tiny: ~64x64x40 scans. The smallest lesions span a few model voxels (3x3x4 mm).
    "tiny": Acquisition(2.0, 64, (3.5, 3.9), (4.0, 4.8), None, 64, (3.8, 4.1), (3.6, 4.4), None,
                        min_lesion_mm3=100.0),
    "lite": Acquisition(1.25, 256, (0.86, 0.98), (2.5, 3.0), None, 192, (1.2, 1.35), (1.3, 1.6),
                        None, min_lesion_mm3=5.0),
    # paper: the benchmark sizes, a 512x512x160 CT and a 256x256x176 MR.
    "paper": Acquisition(1.0, 512, (0.45, 0.5), (1.1, 1.1), 160, 256, (1.0, 1.0), (1.0, 1.0), 176,
                         min_lesion_mm3=5.0),
}  # fmt: skip

# Head-coordinate z range a CT of the head covers (skull base region to vertex).
CT_Z_RANGE_MM = (-78.0, 100.0)
MR_AXIAL_Z_RANGE_MM = (-70.0, 104.0)
MR_SAGITTAL_X_RANGE_MM = (-86.0, 86.0)


def _euler(center: np.ndarray, angles_rad: np.ndarray, translation: np.ndarray):
    t = sitk.Euler3DTransform()
    t.SetCenter([float(v) for v in center])
    t.SetRotation(*[float(a) for a in angles_rad])
    t.SetTranslation([float(v) for v in translation])
    return t


def transform_to_dict(t: sitk.Euler3DTransform) -> dict[str, object]:
    """The registration's transform record plus the total rotation angle (for truth.json)."""
    m = np.asarray(t.GetMatrix()).reshape(3, 3)
    angle = float(np.degrees(np.arccos(np.clip((np.trace(m) - 1) / 2, -1, 1))))
    return {**euler_to_dict(t), "rotation_deg": angle}


def _rician(rng: np.random.Generator, signal: np.ndarray, sigma: float) -> np.ndarray:
    n1 = rng.standard_normal(signal.shape, dtype=np.float32) * sigma
    n2 = rng.standard_normal(signal.shape, dtype=np.float32) * sigma
    return np.sqrt((signal + n1) ** 2 + n2**2)


def _bias_field(rng: np.random.Generator, geom: Geometry) -> np.ndarray:
    """A smooth multiplicative receive-coil field over the MR grid, (z, y, x)."""
    nx, ny, nz = geom.size_xyz
    gz, gy, gx = np.meshgrid(
        np.linspace(-1, 1, nz, dtype=np.float32),
        np.linspace(-1, 1, ny, dtype=np.float32),
        np.linspace(-1, 1, nx, dtype=np.float32),
        indexing="ij",
        sparse=True,
    )
    c = rng.uniform(-0.12, 0.12, size=7).astype(np.float32)
    return (
        1.0 + c[0] * gx + c[1] * gy + c[2] * gz + c[3] * gx * gx + c[4] * gy * gy
        + c[5] * gz * gz + c[6] * gx * gy
    )  # fmt: skip


def _truth_on_grid(lesions: list[Lesion], geom: Geometry, head_centre: np.ndarray) -> np.ndarray:
    """Lesion labels 1..N (z, y, x) uint16, evaluated at the grid's voxel centres."""
    nx, ny, nz = geom.size_xyz
    labels = np.zeros((nz, ny, nx), dtype=np.uint16)
    for i, les in enumerate(lesions, start=1):
        c = les.centre_mm + head_centre
        r = les.extent_mm + 1.0
        corners = np.array(
            [[c[0] + a, c[1] + b, c[2] + e] for a in (-r, r) for b in (-r, r) for e in (-r, r)]
        )
        idx = geom.physical_to_index(corners)
        lo = np.clip(np.floor(idx.min(axis=0)).astype(int), 0, np.array(geom.size_xyz) - 1)
        hi = np.clip(np.ceil(idx.max(axis=0)).astype(int) + 1, 0, np.array(geom.size_xyz))
        ii, jj, kk = np.meshgrid(
            np.arange(lo[0], hi[0]), np.arange(lo[1], hi[1]), np.arange(lo[2], hi[2]), indexing="ij"
        )
        ijk = np.stack([ii.ravel(), jj.ravel(), kk.ravel()], axis=1)
        inside = les.contains(geom.index_to_physical(ijk) - head_centre)
        hit = ijk[inside]
        if len(hit) == 0:  # smaller than a voxel: keep the voxel at its centre
            hit = np.round(geom.physical_to_index(c[None]))[0].astype(int)[None]
            hit = np.clip(hit, 0, np.array(geom.size_xyz) - 1)
        labels[hit[:, 2], hit[:, 1], hit[:, 0]] = i
    return labels


@dataclass(frozen=True)
class _Scene:
    """The patient before imaging: lesions, painted head, where it lies and how it moved.

    ``head_centre`` (mm, LPS x, y, z) places the phantom on the CT table;
    ``ct_to_mr`` moves CT-frame points into the MR session's frame (rigid, about
    ``head_centre``), with rotation ``angles`` (radians about x, y, z).
    """

    lesions: list[Lesion]
    pgrid: PhantomGrid
    info: dict[str, object]
    head_centre: np.ndarray
    angles: np.ndarray
    ct_to_mr: sitk.Euler3DTransform
    orientation: str


@dataclass(frozen=True)
class _Scan:
    """One synthetic series: stored values ``(slices, rows, cols)`` uint16 and its grid."""

    stored: np.ndarray
    geom: Geometry
    pixel_mm: float
    slice_mm: float
    n_slices: int


def _draw_lesion_count(rng: np.random.Generator, n_lesions: int | None) -> int:
    """2..7 lesions drawn from the seed unless ``n_lesions`` is given (``ValueError`` if < 0)."""
    n = int(rng.integers(2, 8)) if n_lesions is None else int(n_lesions)
    if n < 0:
        raise ValueError("n_lesions must be >= 0")
    return n


def _draw_head_motion(
    rng: np.random.Generator,
    head_centre: np.ndarray,
    misalignment: tuple[tuple[float, float, float], tuple[float, float, float]] | None,
) -> tuple[np.ndarray, sitk.Euler3DTransform]:
    """Rotation (radians; up to 8 degrees per axis) and the CT->MR transform.

    The shift is up to 35 mm per axis; ``misalignment`` forces
    ``(angles_deg_xyz, translation_mm_xyz)``.
    """
    if misalignment is None:
        angles = np.deg2rad(rng.uniform(-8.0, 8.0, size=3))
        shift = rng.uniform(-15.0, 15.0, size=3) + rng.uniform(-20.0, 20.0, size=3)
    else:
        angles = np.deg2rad(np.asarray(misalignment[0], dtype=float))
        shift = np.asarray(misalignment[1], dtype=float)
        rng.uniform(size=6)  # keep the stream aligned with the default path
    return angles, _euler(head_centre, angles, shift)


def _draw_scene(
    rng: np.random.Generator,
    acq: Acquisition,
    n_lesions: int | None,
    mr_orientation: str | None,
    misalignment: tuple[tuple[float, float, float], tuple[float, float, float]] | None,
) -> tuple[_Scene, np.ndarray, np.ndarray]:
    """The scene, and the CT and MR phantom volumes (``PhantomGrid`` z, y, x)."""
    n = _draw_lesion_count(rng, n_lesions)
    lesions = place_lesions(rng, n, (acq.min_lesion_mm3, acq.max_lesion_mm3)) if n else []
    pgrid = PhantomGrid(acq.phantom_mm)
    ct_ph, mr_ph, info = paint_head(rng, pgrid, lesions)
    # Where the head sits on the CT table, and how it moved before the MR.
    head_centre = np.array([rng.uniform(-8, 8), rng.uniform(-25, 5), rng.uniform(-60, 60)])
    angles, ct_to_mr = _draw_head_motion(rng, head_centre, misalignment)
    orientation = mr_orientation or ("sagittal" if rng.uniform() < 0.4 else "axial")
    if orientation not in ("axial", "sagittal"):
        raise ValueError("mr_orientation must be 'axial' or 'sagittal'")
    scene = _Scene(lesions, pgrid, info, head_centre, angles, ct_to_mr, orientation)
    return scene, ct_ph, mr_ph


def _phantom_image(arr: np.ndarray, scene: _Scene) -> sitk.Image:
    """A phantom volume as a SimpleITK image placed at the head's position (mm)."""
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing([scene.pgrid.h] * 3)
    img.SetOrigin([float(v) for v in scene.head_centre + BOX_MIN_MM])
    return img


def _scan_ct(
    rng: np.random.Generator, acq: Acquisition, phantom: np.ndarray, scene: _Scene
) -> _Scan:
    """Axial CT, head roughly centred in the field of view; HU + 1024 with 6 HU noise."""
    ct_px = float(rng.uniform(*acq.ct_pixel_mm))
    ct_dz = float(rng.uniform(*acq.ct_slice_mm))
    z0 = CT_Z_RANGE_MM[0] + rng.uniform(-4, 4)
    ct_nz = acq.ct_slices or int(np.ceil((CT_Z_RANGE_MM[1] - z0) / ct_dz)) + 1
    ct_centre = scene.head_centre + np.array(
        [rng.uniform(-6, 6), rng.uniform(-6, 6), z0 + (ct_nz - 1) * ct_dz / 2.0]
    )
    ct_geom = Geometry.centred(
        ct_centre, (acq.ct_in_plane, acq.ct_in_plane, ct_nz), (ct_px, ct_px, ct_dz), AXIAL
    )
    ct_img = sitk.Resample(
        _phantom_image(phantom, scene),
        ct_geom.reference(),
        sitk.Transform(),
        sitk.sitkLinear,
        -1000.0,
    )
    ct_hu = sitk.GetArrayFromImage(ct_img)
    ct_hu += rng.standard_normal(ct_hu.shape, dtype=np.float32) * 6.0
    ct_stored = np.clip(np.round(ct_hu + 1024.0), 0, 4095).astype(np.uint16)
    return _Scan(ct_stored, ct_geom, ct_px, ct_dz, ct_nz)


def _scan_mr(
    rng: np.random.Generator, acq: Acquisition, phantom: np.ndarray, scene: _Scene
) -> _Scan:
    """The MR on its own grid and orientation, head moved by ``ct_to_mr``; receive-coil
    bias field and Rician noise (sigma 18)."""
    mr_px = float(rng.uniform(*acq.mr_pixel_mm))
    mr_dz = float(rng.uniform(*acq.mr_slice_mm))
    axial = scene.orientation == "axial"
    lo, hi = MR_AXIAL_Z_RANGE_MM if axial else MR_SAGITTAL_X_RANGE_MM
    direction = AXIAL if axial else SAGITTAL
    mr_ns = acq.mr_slices or int(np.ceil((hi - lo) / mr_dz)) + 1
    local_centre = np.array([0.0, 0.0, (lo + hi) / 2.0 if axial else 10.0])
    moved_centre = scene.ct_to_mr.TransformPoint(scene.head_centre + local_centre)
    mr_centre = np.asarray(moved_centre) + rng.normal(scale=4.0, size=3)
    mr_geom = Geometry.centred(
        mr_centre, (acq.mr_in_plane, acq.mr_in_plane, mr_ns), (mr_px, mr_px, mr_dz), direction
    )
    mr_img = sitk.Resample(
        _phantom_image(phantom, scene),
        mr_geom.reference(),
        scene.ct_to_mr.GetInverse(),
        sitk.sitkLinear,
        0.0,
    )
    mr_sig = sitk.GetArrayFromImage(mr_img) * _bias_field(rng, mr_geom)
    mr_sig = _rician(rng, mr_sig, 18.0)
    mr_stored = np.clip(np.round(mr_sig), 0, 4095).astype(np.uint16)
    return _Scan(mr_stored, mr_geom, mr_px, mr_dz, mr_ns)


def _patient_tags(seed: int) -> dict[str, object]:
    """Patient- and site-level DICOM attributes shared by both series."""
    return {
        "PatientName": f"SYNTH^CASE{seed:06d}",
        "PatientID": f"LLSYN{seed:06d}",
        "PatientBirthDate": f"{1940 + int(seed) % 45}0615",
        "PatientSex": "F" if seed % 2 else "M",
        "BodyPartExamined": "HEAD",
        "PatientPosition": "HFS",
        "Manufacturer": "LesionLoop Synthetic",
        "InstitutionName": "LesionLoop",
        "ReferringPhysicianName": "",
        "AccessionNumber": f"A{seed:07d}",
    }


def _ct_tags(
    patient: dict[str, object], variant: tuple[object, ...], date: dt.date
) -> dict[str, object]:
    """The planning CT's series attributes (UIDs from ``variant``)."""
    return {
        **patient,
        "StudyInstanceUID": stable_uid(*variant, "ct-study"),
        "SeriesInstanceUID": stable_uid(*variant, "ct-series"),
        "FrameOfReferenceUID": stable_uid(*variant, "ct-for"),
        "StudyID": "1",
        "StudyDate": date.strftime("%Y%m%d"),
        "StudyTime": "083000",
        "SeriesDate": date.strftime("%Y%m%d"),
        "ContentDate": date.strftime("%Y%m%d"),
        "StudyDescription": "SRS PLANNING HEAD",
        "SeriesDescription": "CT HEAD",
        "SeriesNumber": 2,
        "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
        "KVP": "120",
        "ConvolutionKernel": "H30s",
        "RescaleIntercept": "-1024",
        "RescaleSlope": "1",
        "RescaleType": "HU",
        "WindowCenter": ["40", "400"],
        "WindowWidth": ["80", "2000"],
        "WindowCenterWidthExplanation": ["BRAIN", "BONE"],
    }


def _mr_tags(
    patient: dict[str, object], variant: tuple[object, ...], date: dt.date, orientation: str
) -> dict[str, object]:
    """The contrast T1 MR's series attributes (UIDs from ``variant``)."""
    return {
        **patient,
        "StudyInstanceUID": stable_uid(*variant, "mr-study"),
        "SeriesInstanceUID": stable_uid(*variant, "mr-series"),
        "FrameOfReferenceUID": stable_uid(*variant, "mr-for"),
        "StudyID": "1",
        "StudyDate": date.strftime("%Y%m%d"),
        "StudyTime": "141500",
        "SeriesDate": date.strftime("%Y%m%d"),
        "ContentDate": date.strftime("%Y%m%d"),
        "StudyDescription": "MR BRAIN METS",
        "SeriesDescription": "T1 MPRAGE +C" + (" SAG" if orientation == "sagittal" else ""),
        "SeriesNumber": 7,
        "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND"],
        "ScanningSequence": ["GR", "IR"],
        "SequenceVariant": ["SK", "SP", "MP"],
        "MRAcquisitionType": "3D",
        "RepetitionTime": "2300",
        "EchoTime": "2.98",
        "InversionTime": "900",
        "FlipAngle": "9",
        "MagneticFieldStrength": "3",
        "ContrastBolusAgent": "Gadoterate meglumine",
        "RescaleIntercept": "0",
        "RescaleSlope": "1",
        "WindowCenter": "700",
        "WindowWidth": "1400",
    }


def _write_nifti(arr: np.ndarray, geom: Geometry, path: Path) -> None:
    """``arr`` (z, y, x) on ``geom`` as a compressed NIfTI."""
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(geom.reference())
    sitk.WriteImage(img, str(path), useCompression=True)


def _lesion_rows(
    lesions: list[Lesion], labels: np.ndarray, head_centre: np.ndarray, ct: _Scan
) -> list[dict[str, object]]:
    """truth.json's lesion records: shape, label, centre (mm) and CT volume (voxels, mm3)."""
    ct_voxel_mm3 = ct.pixel_mm * ct.pixel_mm * ct.slice_mm
    counts = np.bincount(labels.ravel(), minlength=len(lesions) + 1)
    rows = []
    for i, les in enumerate(lesions, start=1):
        row = les.to_dict()
        row["label"] = i
        row["centre_xyz_mm"] = [float(v) for v in les.centre_mm + head_centre]
        row["volume_vox_ct"] = int(counts[i])
        row["volume_mm3_ct"] = float(counts[i] * ct_voxel_mm3)
        rows.append(row)
    return rows


def _truth_record(
    seed: int,
    grid: str,
    acq: Acquisition,
    scene: _Scene,
    scans: tuple[_Scan, _Scan],
    lesion_rows: list[dict[str, object]],
    dicom: dict[str, object],
) -> dict[str, object]:
    """The content of truth.json (key order is part of the file's bytes)."""
    ct, mr = scans
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "grid": grid,
        "n_lesions": len(scene.lesions),
        "lesion_volume_range_mm3": [acq.min_lesion_mm3, acq.max_lesion_mm3],
        "lesions": lesion_rows,
        "transform": {
            **transform_to_dict(scene.ct_to_mr),
            "angles_deg": [float(np.degrees(a)) for a in scene.angles],
        },
        "head_centre_xyz_mm": [float(v) for v in scene.head_centre],
        "ct": {**ct.geom.to_dict(), "orientation": "axial", "n_files": int(ct.n_slices)},
        "mr": {**mr.geom.to_dict(), "orientation": scene.orientation, "n_files": int(mr.n_slices)},
        "dicom": dicom,
        "phantom": {"spacing_mm": scene.pgrid.h, **scene.info},
        "files": {
            "ct_dir": "dicom/ct",
            "mr_dir": "dicom/mr",
            "ground_truth_ct": "ground_truth_ct.nii.gz",
            "ground_truth_labels_ct": "ground_truth_labels_ct.nii.gz",
        },
    }


def _dicom_record(
    tags: tuple[dict[str, object], dict[str, object]], transfer_syntax: str | None
) -> dict[str, object]:
    """truth.json's ``dicom`` entry: patient ID, series / study UIDs, transfer syntax."""
    ct_tags, mr_tags = tags
    return {
        "patient_id": ct_tags["PatientID"],
        "ct_series_uid": str(ct_tags["SeriesInstanceUID"]),
        "mr_series_uid": str(mr_tags["SeriesInstanceUID"]),
        "ct_study_uid": str(ct_tags["StudyInstanceUID"]),
        "transfer_syntax": transfer_syntax or "1.2.840.10008.1.2.1",
    }


def _write_series_pair(
    tmp: Path,
    scans: tuple[_Scan, _Scan],
    tags: tuple[dict[str, object], dict[str, object]],
    variant: tuple[object, ...],
    transfer_syntax: str | None,
) -> None:
    """Both DICOM series under ``tmp/dicom/ct`` and ``tmp/dicom/mr``."""
    for scan, series_tags, modality in zip(scans, tags, ("CT", "MR"), strict=True):
        write_series(
            scan.stored,
            scan.geom,
            tmp / "dicom" / modality.lower(),
            modality=modality,
            tags=series_tags,
            uid_parts=(*variant, modality.lower()),
            transfer_syntax=transfer_syntax,
            file_prefix=modality,
        )


def _publish_study(out: Path, fill: Callable[[Path], None]) -> None:
    """Run ``fill`` on a temporary sibling of ``out``, then rename it to ``out``:
    a crash never leaves half a study (the sibling is removed)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        fill(tmp)
        publish_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def generate_study(
    out_dir: str | os.PathLike[str],
    *,
    seed: int,
    grid: str = "lite",
    n_lesions: int | None = None,
    mr_orientation: str | None = None,
    transfer_syntax: str | None = None,
    misalignment: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None,
) -> dict[str, object]:
    """Write a synthetic CT + contrast T1 MR study and its ground truth to ``out_dir``.

    Layout: ``dicom/ct/*.dcm``, ``dicom/mr/*.dcm``, ``ground_truth_ct.nii.gz`` (0/1 on
    the CT grid), ``ground_truth_labels_ct.nii.gz`` (lesion i = label i) and
    ``truth.json`` (lesions, the CT->MR transform, geometries, seed), whose content is
    also returned.

    ``grid`` sizes the acquisitions (``tiny`` ~64x64x40, ``lite`` ~256x256x70 CT,
    ``paper`` 512x512x160 CT + 256x256x176 MR). ``mr_orientation`` forces "axial" or
    "sagittal" (default: drawn from the seed); ``transfer_syntax`` compresses the
    pixel data (e.g. RLE or JPEG-LS lossless UIDs); ``misalignment`` forces
    ``(angles_deg_xyz, translation_mm_xyz)`` of the head motion between sessions.
    Raises ``ValueError`` for an unknown grid, ``n_lesions < 0`` or another
    orientation.

    Steps, each drawing from the seeded generator in this order: the scene
    (lesions, painted head, head position and motion, MR orientation), the CT
    scan, the MR scan, the MR's date; then the analytic truth on the CT grid and
    the files.
    """
    grid_preset(grid)  # validates the name
    acq = ACQUISITIONS[grid]
    rng = np.random.default_rng(seed)
    scene, ct_ph, mr_ph = _draw_scene(rng, acq, n_lesions, mr_orientation, misalignment)
    ct = _scan_ct(rng, acq, ct_ph, scene)
    del ct_ph
    mr = _scan_mr(rng, acq, mr_ph, scene)
    del mr_ph
    labels = _truth_on_grid(scene.lesions, ct.geom, scene.head_centre)
    # UIDs depend on everything that changes the images, so two different synthetic
    # studies never share a UID (the platform keys studies on them).
    variant = (seed, grid, n_lesions, mr_orientation, misalignment)
    patient = _patient_tags(seed)
    ct_date = dt.date(2024, 1, 1) + dt.timedelta(days=int(seed) % 700)
    mr_date = ct_date - dt.timedelta(days=int(rng.integers(1, 6)))
    tags = (
        _ct_tags(patient, variant, ct_date),
        _mr_tags(patient, variant, mr_date, scene.orientation),
    )
    truth = _truth_record(
        seed,
        grid,
        acq,
        scene,
        (ct, mr),
        _lesion_rows(scene.lesions, labels, scene.head_centre, ct),
        _dicom_record(tags, transfer_syntax),
    )

    def fill(tmp: Path) -> None:
        _write_series_pair(tmp, (ct, mr), tags, variant, transfer_syntax)
        _write_nifti((labels > 0).astype(np.uint8), ct.geom, tmp / "ground_truth_ct.nii.gz")
        _write_nifti(labels, ct.geom, tmp / "ground_truth_labels_ct.nii.gz")
        (tmp / "truth.json").write_text(json.dumps(truth, indent=2))

    _publish_study(Path(out_dir), fill)
    return truth
