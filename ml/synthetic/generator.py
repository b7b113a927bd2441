"""``generate_study``: a synthetic planning CT + contrast T1 MR pair as real DICOM.

The same analytic head (``phantom.py``) is imaged twice: by a CT (axial, the
reference frame) and by an MR in a second session, where the head has moved by a
known rigid transform and the scanner uses its own grid (spacing, field of view,
slice thickness, axial or sagittal slices). Ground truth is evaluated analytically
on the CT grid. Everything is drawn from one ``numpy`` generator seeded by ``seed``,
and UIDs are derived from the seed, so a seed always gives byte-identical files.

``style="classic"`` is the generator the models were developed on (its output is
unchanged byte for byte); ``style="varied"`` draws from a wider distribution that
nothing was tuned on (docs/IMAGING.md "Synthetic styles"): head shapes and sizes,
solid enhancing and fainter lesions, lesions against the dura and beside the middle
cerebral arteries, thin-slice 3D and thick-slice 2D MR acquisitions, motion ghosts,
stronger bias fields, other MR contrast and noise. Its extra draws come from a second
generator seeded by ``[seed, 17]``, so the classic stream is untouched.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ml.atomic import publish_dir, temp_dir_beside
from ml.imaging.geometry import AXIAL, SAGITTAL, GridGeometry
from ml.imaging.registration import euler_to_dict
from ml.presets import grid_preset
from ml.synthetic.dicom_writer import stable_uid, write_series
from ml.synthetic.phantom import (
    BOX_MIN_MM,
    CLASSIC_LESIONS,
    VARIED_LESIONS,
    Lesion,
    PhantomGrid,
    paint_head,
    place_lesions,
)

GENERATOR_VERSION = 3
STYLES = ("classic", "varied")


@dataclass(frozen=True)
class MrAppearance:
    """How a ``varied`` MR differs from the classic one (all drawn per study).

    ``bias_strength``: range of the bias polynomial's coefficients (classic 0.12);
    ``noise_sigma``: Rician sigma (classic 18); ``gamma``: signal mapped by
    ``s -> 1500 (s / 1500) ** gamma`` (other T1 contrast); ``motion_fraction``:
    share of phase-encode lines acquired after the head moved by up to
    ``motion_shift_px`` pixels along the phase-encode direction (ghosts; 0: none);
    ``acquisition``: "3d_iso" (thin isotropic slices), "2d_thick" (4-5 mm slices)
    or "3d" (the grid's usual slices).
    """

    bias_strength: float
    noise_sigma: float
    gamma: float
    motion_fraction: float
    motion_shift_px: float
    acquisition: str

    def to_dict(self) -> dict[str, object]:
        return {k: (float(v) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _varied_appearance(vrng: np.random.Generator) -> MrAppearance:
    moving = vrng.uniform() < 0.5
    return MrAppearance(
        bias_strength=float(vrng.uniform(0.1, 0.3)),
        noise_sigma=float(vrng.uniform(10.0, 40.0)),
        gamma=float(np.exp(vrng.uniform(-0.25, 0.25))),
        motion_fraction=float(vrng.uniform(0.03, 0.15)) if moving else 0.0,
        motion_shift_px=float(vrng.uniform(1.0, 4.0)),
        acquisition=str(vrng.choice(["3d_iso", "2d_thick", "3d"])),
    )


def _mr_acquisition(acq: Acquisition, kind: str) -> Acquisition:
    """``acq`` with the MR slice thickness of an acquisition kind (``MrAppearance``)."""
    if kind == "3d_iso":
        return replace(acq, mr_slice_mm=acq.mr_pixel_mm)
    if kind == "2d_thick":
        lo, hi = acq.mr_slice_mm
        return replace(acq, mr_slice_mm=(max(4.0, 1.5 * lo), max(5.0, 1.5 * hi)))
    return acq


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


def _euler(
    center: np.ndarray, angles_rad: np.ndarray, translation: np.ndarray
) -> sitk.Euler3DTransform:
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


def _bias_field(rng: np.random.Generator, geom: GridGeometry, strength: float = 0.12) -> np.ndarray:
    """A smooth multiplicative receive-coil field over the MR grid, (z, y, x)."""
    nx, ny, nz = geom.size_xyz
    gz, gy, gx = np.meshgrid(
        np.linspace(-1, 1, nz, dtype=np.float32),
        np.linspace(-1, 1, ny, dtype=np.float32),
        np.linspace(-1, 1, nx, dtype=np.float32),
        indexing="ij",
        sparse=True,
    )
    c = rng.uniform(-strength, strength, size=7).astype(np.float32)
    return (
        1.0 + c[0] * gx + c[1] * gy + c[2] * gz + c[3] * gx * gx + c[4] * gy * gy
        + c[5] * gz * gz + c[6] * gx * gy
    )  # fmt: skip


def _motion_ghosts(
    rng: np.random.Generator, sig: np.ndarray, fraction: float, shift_px: float
) -> np.ndarray:
    """``sig`` (slice, row, column) as if the head moved during ``fraction`` of the
    phase-encode lines (rows): each such line ``k_y`` of every slice's 2D k-space is
    multiplied by ``exp(-2 pi i k_y dy)`` (the Fourier shift theorem), ``dy`` uniform in
    +-``shift_px``; the magnitude image then shows ghosts along the rows."""
    n_rows = sig.shape[1]
    moved = rng.uniform(size=n_rows) < fraction
    shifts = rng.uniform(-shift_px, shift_px, size=n_rows) * moved
    phase = np.exp(-2j * np.pi * np.fft.fftfreq(n_rows) * shifts).astype(np.complex64)
    k = np.fft.fft2(sig.astype(np.complex64), axes=(1, 2)) * phase[None, :, None]
    return np.abs(np.fft.ifft2(k, axes=(1, 2))).astype(np.float32)


def _truth_on_grid(
    lesions: list[Lesion],
    geom: GridGeometry,
    head_centre: np.ndarray,
    head_scale: np.ndarray | None = None,
) -> np.ndarray:
    """Lesion labels 1..N (z, y, x) uint16, evaluated at the grid's voxel centres.

    ``head_scale`` (x, y, z factors): the head was stretched by it about its centre
    (``varied`` style), so a point ``p`` is inside a lesion when
    ``(p - head_centre) / head_scale`` is."""
    nx, ny, nz = geom.size_xyz
    labels = np.zeros((nz, ny, nx), dtype=np.uint16)
    scale = np.ones(3) if head_scale is None else np.asarray(head_scale, dtype=float)
    for i, les in enumerate(lesions, start=1):
        c = (
            les.centre_mm * scale + head_centre
            if head_scale is not None
            else les.centre_mm + head_centre
        )
        r = les.extent_mm * float(scale.max()) + 1.0
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
        local = geom.index_to_physical(ijk) - head_centre
        inside = les.contains(local if head_scale is None else local / scale)
        hit = ijk[inside]
        if len(hit) == 0:  # smaller than a voxel: keep the voxel at its centre
            hit = np.round(geom.physical_to_index(c[None]))[0].astype(int)[None]
            hit = np.clip(hit, 0, np.array(geom.size_xyz) - 1)
        labels[hit[:, 2], hit[:, 1], hit[:, 0]] = i
    return labels


def _head_motion(
    rng: np.random.Generator,
    misalignment: tuple[tuple[float, float, float], tuple[float, float, float]] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(angles in rad, translation in mm), each (3,), of the head between CT and MR.

    Drawn (up to 8 deg, up to 35 mm) unless ``misalignment`` forces them; the stream
    of ``rng`` advances by the same six draws either way.
    """
    if misalignment is None:
        angles = np.deg2rad(rng.uniform(-8.0, 8.0, size=3))
        shift = rng.uniform(-15.0, 15.0, size=3) + rng.uniform(-20.0, 20.0, size=3)
    else:
        angles = np.deg2rad(np.asarray(misalignment[0], dtype=float))
        shift = np.asarray(misalignment[1], dtype=float)
        rng.uniform(size=6)  # keep the stream aligned with the default path
    return angles, shift


def _scan_ct(
    rng: np.random.Generator, acq: Acquisition, head_centre: np.ndarray, phantom: sitk.Image
) -> tuple[GridGeometry, np.ndarray]:
    """The CT: axial, head roughly centred in the field of view, 6 HU noise.

    Returns the CT grid and its stored values, uint16 (z, y, x) = HU + 1024 clipped
    to [0, 4095].
    """
    ct_px = float(rng.uniform(*acq.ct_pixel_mm))
    ct_dz = float(rng.uniform(*acq.ct_slice_mm))
    z0 = CT_Z_RANGE_MM[0] + rng.uniform(-4, 4)
    ct_nz = acq.ct_slices or int(np.ceil((CT_Z_RANGE_MM[1] - z0) / ct_dz)) + 1
    ct_centre = head_centre + np.array(
        [rng.uniform(-6, 6), rng.uniform(-6, 6), z0 + (ct_nz - 1) * ct_dz / 2.0]
    )
    ct_geom = GridGeometry.centred(
        ct_centre, (acq.ct_in_plane, acq.ct_in_plane, ct_nz), (ct_px, ct_px, ct_dz), AXIAL
    )
    ct_img = sitk.Resample(phantom, ct_geom.reference(), sitk.Transform(), sitk.sitkLinear, -1000.0)
    ct_hu = sitk.GetArrayFromImage(ct_img)
    del ct_img
    ct_hu += rng.standard_normal(ct_hu.shape, dtype=np.float32) * 6.0
    return ct_geom, np.clip(np.round(ct_hu + 1024.0), 0, 4095).astype(np.uint16)


def _scan_mr(
    rng: np.random.Generator,
    acq: Acquisition,
    orientation: str,
    head_centre: np.ndarray,
    ct_to_mr: sitk.Euler3DTransform,
    phantom: sitk.Image,
    look: MrAppearance | None = None,
) -> tuple[GridGeometry, np.ndarray]:
    """The MR: its own grid and orientation, the head moved by ``ct_to_mr``, a smooth
    bias field and Rician noise (sigma 18; ``look`` changes them and adds contrast and
    motion, ``varied`` style). Returns the MR grid and its stored values, uint16
    (slice, row, column) clipped to [0, 4095]."""
    mr_px = float(rng.uniform(*acq.mr_pixel_mm))
    mr_dz = float(rng.uniform(*acq.mr_slice_mm))
    if orientation == "axial":
        lo, hi = MR_AXIAL_Z_RANGE_MM
        direction = AXIAL
    else:
        lo, hi = MR_SAGITTAL_X_RANGE_MM
        direction = SAGITTAL
    mr_ns = acq.mr_slices or int(np.ceil((hi - lo) / mr_dz)) + 1
    local_centre = np.array([0.0, 0.0, (lo + hi) / 2.0 if orientation == "axial" else 10.0])
    mr_centre = np.asarray(ct_to_mr.TransformPoint(head_centre + local_centre)) + rng.normal(
        scale=4.0, size=3
    )
    mr_geom = GridGeometry.centred(
        mr_centre, (acq.mr_in_plane, acq.mr_in_plane, mr_ns), (mr_px, mr_px, mr_dz), direction
    )
    mr_img = sitk.Resample(
        phantom, mr_geom.reference(), ct_to_mr.GetInverse(), sitk.sitkLinear, 0.0
    )
    if look is None:
        mr_sig = sitk.GetArrayFromImage(mr_img) * _bias_field(rng, mr_geom)
        del mr_img
        mr_sig = _rician(rng, mr_sig, 18.0)
        return mr_geom, np.clip(np.round(mr_sig), 0, 4095).astype(np.uint16)
    mr_sig = sitk.GetArrayFromImage(mr_img)
    del mr_img
    mr_sig = 1500.0 * (np.clip(mr_sig, 0.0, None) / 1500.0) ** look.gamma
    mr_sig = (mr_sig * _bias_field(rng, mr_geom, look.bias_strength)).astype(np.float32)
    if look.motion_fraction > 0:
        mr_sig = _motion_ghosts(rng, mr_sig, look.motion_fraction, look.motion_shift_px)
    mr_sig = _rician(rng, mr_sig, look.noise_sigma)
    return mr_geom, np.clip(np.round(mr_sig), 0, 4095).astype(np.uint16)


def _patient_tags(seed: int) -> dict[str, object]:
    """Patient and equipment attributes shared by both series of the study of ``seed``."""
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
    """The CT series' attributes (UIDs derived from ``variant``), acquired on ``date``."""
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
    """The contrast T1 MR series' attributes (a 3D MPRAGE +C), acquired on ``date``."""
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


def _lesion_rows(
    lesions: list[Lesion],
    labels: np.ndarray,
    ct_geom: GridGeometry,
    head_centre: np.ndarray,
    head_scale: np.ndarray | None = None,
) -> list[dict[str, object]]:
    """truth.json's lesion rows: the phantom lesion, its label, its centre in patient mm
    and its volume on the CT grid (voxels and mm3 = voxels * CT voxel volume)."""
    ct_px, _ct_py, ct_dz = ct_geom.spacing_xyz
    ct_voxel_mm3 = ct_px * ct_px * ct_dz
    counts = np.bincount(labels.ravel(), minlength=len(lesions) + 1)
    rows = []
    for i, les in enumerate(lesions, start=1):
        row = les.to_dict()
        row["label"] = i
        centre = les.centre_mm if head_scale is None else les.centre_mm * head_scale
        row["centre_xyz_mm"] = [float(v) for v in centre + head_centre]
        row["volume_vox_ct"] = int(counts[i])
        row["volume_mm3_ct"] = float(counts[i] * ct_voxel_mm3)
        rows.append(row)
    return rows


def _write_nifti(arr: np.ndarray, geom: GridGeometry, path: Path) -> None:
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(geom.reference())
    sitk.WriteImage(img, str(path), useCompression=True)


def _phantom_image(
    arr: np.ndarray,
    spacing_mm: float,
    head_centre: np.ndarray,
    head_scale: np.ndarray | None = None,
) -> sitk.Image:
    """A phantom array (z, y, x) as an image of isotropic ``spacing_mm`` placed around
    ``head_centre`` (patient mm); ``head_scale`` (x, y, z) stretches it about the centre."""
    img = sitk.GetImageFromArray(arr)
    if head_scale is None:
        img.SetSpacing([spacing_mm] * 3)
        img.SetOrigin([float(v) for v in head_centre + BOX_MIN_MM])
    else:
        img.SetSpacing([float(spacing_mm * f) for f in head_scale])
        img.SetOrigin([float(v) for v in head_centre + BOX_MIN_MM * head_scale])
    return img


def _series_tags(
    rng: np.random.Generator, seed: int, variant: tuple[object, ...], orientation: str
) -> tuple[dict[str, object], dict[str, object], dict[str, object]]:
    """(patient, CT, MR) attributes: the CT on a date derived from ``seed``, the MR one
    to five days before it (one draw from ``rng``)."""
    base = dt.date(2024, 1, 1) + dt.timedelta(days=int(seed) % 700)
    patient = _patient_tags(seed)
    ct_tags = _ct_tags(patient, variant, base)
    mr_date = base - dt.timedelta(days=int(rng.integers(1, 6)))
    return patient, ct_tags, _mr_tags(patient, variant, mr_date, orientation)


def _geometry_records(
    ct_geom: GridGeometry, mr_geom: GridGeometry, orientation: str
) -> dict[str, dict[str, object]]:
    """truth.json's ``ct`` and ``mr``: each grid, its orientation and number of files."""
    return {
        "ct": {**ct_geom.to_dict(), "orientation": "axial", "n_files": int(ct_geom.size_xyz[2])},
        "mr": {
            **mr_geom.to_dict(),
            "orientation": orientation,
            "n_files": int(mr_geom.size_xyz[2]),
        },
    }


def _dicom_record(
    patient: dict[str, object],
    ct_tags: dict[str, object],
    mr_tags: dict[str, object],
    transfer_syntax: str | None,
) -> dict[str, object]:
    """truth.json's ``dicom``: the identifiers ingest should report."""
    return {
        "patient_id": patient["PatientID"],
        "ct_series_uid": str(ct_tags["SeriesInstanceUID"]),
        "mr_series_uid": str(mr_tags["SeriesInstanceUID"]),
        "ct_study_uid": str(ct_tags["StudyInstanceUID"]),
        "transfer_syntax": transfer_syntax or "1.2.840.10008.1.2.1",
    }


def _files_record() -> dict[str, str]:
    """truth.json's ``files``: where the study's parts are, relative to its folder."""
    return {
        "ct_dir": "dicom/ct",
        "mr_dir": "dicom/mr",
        "ground_truth_ct": "ground_truth_ct.nii.gz",
        "ground_truth_labels_ct": "ground_truth_labels_ct.nii.gz",
    }


def _write_study(
    out: Path,
    series: tuple[tuple[str, np.ndarray, GridGeometry, dict[str, object]], ...],
    labels: np.ndarray,
    ct_geom: GridGeometry,
    truth: dict[str, object],
    variant: tuple[object, ...],
    transfer_syntax: str | None,
) -> None:
    """Write the DICOM series (``(modality, stored, grid, tags)`` each), the ground truth
    NIfTIs and truth.json into a temporary sibling of ``out``, then rename it into
    place: a crash never leaves half a study."""
    tmp = temp_dir_beside(out)
    try:
        for modality, stored, geom, tags in series:
            write_series(
                stored,
                geom,
                tmp / "dicom" / modality.lower(),
                modality=modality,
                tags=tags,
                uid_parts=(*variant, modality.lower()),
                transfer_syntax=transfer_syntax,
                file_prefix=modality,
            )
        _write_nifti((labels > 0).astype(np.uint8), ct_geom, tmp / "ground_truth_ct.nii.gz")
        _write_nifti(labels, ct_geom, tmp / "ground_truth_labels_ct.nii.gz")
        (tmp / "truth.json").write_text(json.dumps(truth, indent=2))
        publish_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@dataclass(frozen=True)
class _StyleDraws:
    """What a style changes in one study (all ``None`` / classic for ``classic``)."""

    lesions: object  # phantom.LesionStyle
    head_scale: np.ndarray | None
    look: MrAppearance | None

    def record(self) -> dict[str, object]:
        """truth.json's ``style`` block (``varied`` only: classic files stay as they were)."""
        assert self.head_scale is not None and self.look is not None
        return {
            "name": "varied",
            "head_scale_xyz": [float(v) for v in self.head_scale],
            "mr": self.look.to_dict(),
        }


def _style_draws(style: str, seed: int) -> _StyleDraws:
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    if style == "classic":
        return _StyleDraws(CLASSIC_LESIONS, None, None)
    vrng = np.random.default_rng([int(seed), 17])
    head_scale = vrng.uniform(0.88, 1.12, size=3)
    return _StyleDraws(VARIED_LESIONS, head_scale, _varied_appearance(vrng))


# long: one linear recipe (draw, paint, scan, record, write), read top to bottom
def generate_study(
    out_dir: str | os.PathLike[str],
    *,
    seed: int,
    grid: str = "lite",
    n_lesions: int | None = None,
    mr_orientation: str | None = None,
    transfer_syntax: str | None = None,
    misalignment: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None,
    style: str = "classic",
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
    ``style``: "classic" (default, the unchanged generator) or "varied" (module
    docstring; truth.json then has a ``style`` block with what was drawn).
    ``ValueError`` for a negative ``n_lesions``, an unknown ``mr_orientation``, grid
    or style.
    """
    grid_preset(grid)  # validates the name
    draws = _style_draws(style, seed)
    acq = ACQUISITIONS[grid]
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 8)) if n_lesions is None else int(n_lesions)
    if n < 0:
        raise ValueError("n_lesions must be >= 0")

    rng_v = (acq.min_lesion_mm3, acq.max_lesion_mm3)
    lesions = place_lesions(rng, n, rng_v, draws.lesions) if n else []
    pgrid = PhantomGrid(acq.phantom_mm)
    ct_ph, mr_ph, info = paint_head(rng, pgrid, lesions)

    # Where the head sits on the CT table, and how it moved before the MR.
    head_centre = np.array([rng.uniform(-8, 8), rng.uniform(-25, 5), rng.uniform(-60, 60)])
    angles, shift = _head_motion(rng, misalignment)
    ct_to_mr = _euler(head_centre, angles, shift)
    orientation = mr_orientation or ("sagittal" if rng.uniform() < 0.4 else "axial")
    if orientation not in ("axial", "sagittal"):
        raise ValueError("mr_orientation must be 'axial' or 'sagittal'")
    # UIDs depend on everything that changes the images, so two different synthetic
    # studies never share a UID (the platform keys studies on them).
    variant = (seed, grid, n_lesions, mr_orientation, misalignment)
    if style != "classic":
        variant = (*variant, style)

    scale = draws.head_scale
    ct_geom, ct_stored = _scan_ct(
        rng, acq, head_centre, _phantom_image(ct_ph, pgrid.h, head_centre, scale)
    )
    del ct_ph
    mr_phantom = _phantom_image(mr_ph, pgrid.h, head_centre, scale)
    mr_acq = acq if draws.look is None else _mr_acquisition(acq, draws.look.acquisition)
    mr_geom, mr_stored = _scan_mr(
        rng, mr_acq, orientation, head_centre, ct_to_mr, mr_phantom, draws.look
    )
    del mr_ph, mr_phantom
    labels = _truth_on_grid(lesions, ct_geom, head_centre, scale)
    patient, ct_tags, mr_tags = _series_tags(rng, seed, variant, orientation)
    truth: dict[str, object] = {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "grid": grid,
        "n_lesions": len(lesions),
        "lesion_volume_range_mm3": [acq.min_lesion_mm3, acq.max_lesion_mm3],
        "lesions": _lesion_rows(lesions, labels, ct_geom, head_centre, scale),
        "transform": {
            **transform_to_dict(ct_to_mr),
            "angles_deg": [float(np.degrees(a)) for a in angles],
        },
        "head_centre_xyz_mm": [float(v) for v in head_centre],
        **_geometry_records(ct_geom, mr_geom, orientation),
        "dicom": _dicom_record(patient, ct_tags, mr_tags, transfer_syntax),
        "phantom": {"spacing_mm": pgrid.h, **info},
        "files": _files_record(),
    }
    if style != "classic":
        truth["style"] = draws.record()
    series = (("CT", ct_stored, ct_geom, ct_tags), ("MR", mr_stored, mr_geom, mr_tags))
    _write_study(out, series, labels, ct_geom, truth, variant, transfer_syntax)
    return truth
