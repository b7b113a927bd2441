"""An analytic synthetic head: scalp, skull, skull base, CSF, grey and white matter,
ventricles, deep grey nuclei, enhancing dural sinuses and vessels, and metastases.

The head lives in "head coordinates": millimetres, LPS axes, origin at the centre of
the skull ellipsoid. Tissues are painted on a regular phantom grid with soft
(partial-volume) occupancies, once with CT values (HU) and once with contrast-T1 MR
values, so both modalities show exactly the same anatomy. Lesion shapes are analytic
(a lobulated ellipsoid), so the ground truth can be evaluated on any grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

# Semi-axes (x=left-right, y=antero-posterior, z=cranio-caudal) of the head's outer surface.
HEAD_AXES_MM = np.array([76.0, 94.0, 98.0])
SCALP_MM = 5.0
SKULL_MM = 7.0  # outer table + diploe + inner table
BRAIN_DEPTH_MM = 14.0  # depth of the brain surface below the skin, before sulci
# The phantom box in head coordinates: the head plus the upper neck and some air.
BOX_MIN_MM = np.array([-100.0, -118.0, -100.0])
BOX_MAX_MM = np.array([100.0, 118.0, 118.0])

# (CT HU, MR T1+C) per tissue.
AIR = (-1000.0, 0.0)
SOFT = (35.0, 720.0)
NECK = (45.0, 520.0)
BONE = (1250.0, 70.0)
DIPLOE = (650.0, 360.0)
CSF = (8.0, 170.0)
GM = (40.0, 620.0)
WM = (28.0, 880.0)
DEEP_GM = (38.0, 660.0)
BLOOD = (48.0, 1380.0)  # contrast-enhanced venous/arterial blood


def skull_base_z(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Height (head coords) of the floor of the cranial cavity: lower at the back."""
    return -40.0 + 0.0016 * x * x - 0.10 * np.clip(y, 0.0, None) + 0.06 * np.clip(-y, 0.0, None)


def ellipsoid_depth(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, axes: np.ndarray = HEAD_AXES_MM
) -> np.ndarray:
    """Approximate signed distance (mm, negative inside) to an ellipsoid surface, along the ray."""
    rho = np.sqrt((x / axes[0]) ** 2 + (y / axes[1]) ** 2 + (z / axes[2]) ** 2)
    r = np.sqrt(x * x + y * y + z * z)
    return (rho - 1.0) * r / np.maximum(rho, 1e-6)


def _soft(d: np.ndarray, h: float) -> np.ndarray:
    """Partial-volume occupancy of the region d <= 0 on a grid of spacing h."""
    return np.clip(0.5 - d / h, 0.0, 1.0).astype(np.float32)


def _random_field(rng: np.random.Generator, n_waves: int, wavelength_mm: tuple[float, float]):
    k = rng.normal(size=(n_waves, 3))
    k /= np.linalg.norm(k, axis=1, keepdims=True)
    k *= (2 * np.pi / rng.uniform(*wavelength_mm, size=n_waves))[:, None]
    phase = rng.uniform(0, 2 * np.pi, size=n_waves)

    def field(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Sum of plane waves on open (broadcastable) axes x (1,1,X), y (1,Y,1), z (Z,1,1).

        cos(a + b) = cos a cos b - sin a sin b with a in the (y, x) plane and b along z:
        no full-volume phase array per wave (3x faster on a 5-million-voxel phantom).
        """
        out = np.zeros(np.broadcast_shapes(x.shape, y.shape, z.shape), dtype=np.float32)
        tmp = np.empty_like(out)
        for i in range(n_waves):
            a = (k[i, 0] * x + k[i, 1] * y + phase[i]).astype(np.float32)
            b = (k[i, 2] * z).astype(np.float32)
            np.multiply(np.cos(a), np.cos(b), out=tmp)
            out += tmp
            np.multiply(np.sin(a), np.sin(b), out=tmp)
            out -= tmp
        return np.clip(out / np.sqrt(n_waves / 2.0), -1.5, 1.5) / 1.5

    return field


@dataclass
class Lesion:
    """A lobulated ellipsoid: inside where |u| <= b(u/|u|), u = R^T (p - c) / axes."""

    centre_mm: np.ndarray  # head coordinates
    axes_mm: np.ndarray
    rotation: np.ndarray  # 3x3
    lobes: np.ndarray  # coefficients of the low-order surface harmonics
    volume_mm3: float
    kind: str  # cortical, deep, skull_base
    rim_mm: float
    necrotic: bool
    enhancement: float
    edema_mm: float
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def extent_mm(self) -> float:
        """A radius that surely contains the lesion."""
        return float(self.axes_mm.max() * (1.0 + np.abs(self.lobes).sum()))

    def depth(self, pts: np.ndarray, shrink_mm: float = 0.0) -> np.ndarray:
        """Approximate signed distance (mm) of (N, 3) head-coordinate points to the surface."""
        u = ((pts - self.centre_mm) @ self.rotation) / self.axes_mm
        rho = np.linalg.norm(u, axis=1)
        n = u / np.maximum(rho, 1e-9)[:, None]
        b = _lobe_radius(n, self.lobes)
        r = np.linalg.norm(pts - self.centre_mm, axis=1)
        scale = r / np.maximum(rho, 1e-9)  # mm per unit of u along this ray
        return (rho - b) * scale + shrink_mm

    def contains(self, pts: np.ndarray) -> np.ndarray:
        return self.depth(pts) <= 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "centre_xyz_mm_head": [float(v) for v in self.centre_mm],
            "axes_mm": [float(v) for v in self.axes_mm],
            "rotation": [float(v) for v in self.rotation.ravel()],
            "lobes": [float(v) for v in self.lobes],
            "volume_mm3": float(self.volume_mm3),
            "kind": self.kind,
            "rim_mm": float(self.rim_mm),
            "necrotic": bool(self.necrotic),
            "enhancement": float(self.enhancement),
            "edema_mm": float(self.edema_mm),
        }


def _lobe_radius(n: np.ndarray, lobes: np.ndarray) -> np.ndarray:
    nx, ny, nz = n[:, 0], n[:, 1], n[:, 2]
    basis = np.stack(
        [nx, ny, nz, nx * ny, nx * nz, ny * nz, nx * nx - ny * ny, 3 * nz * nz - 1,
         nx * (nx * nx - 3 * ny * ny), nz * (5 * nz * nz - 3)],
        axis=1,
    )  # fmt: skip
    return np.clip(1.0 + basis @ lobes, 0.45, None)


def _unit_volume(lobes: np.ndarray) -> float:
    """Volume of {|u| <= b(u/|u|)} in u-space (axes 1), by a fine lattice count."""
    n = 48
    lim = 1.0 + np.abs(lobes).sum()
    g = (np.arange(n) + 0.5) / n * 2 * lim - lim
    u = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)
    rho = np.linalg.norm(u, axis=1)
    inside = rho <= _lobe_radius(u / np.maximum(rho, 1e-9)[:, None], lobes)
    return float(inside.sum() * (2 * lim / n) ** 3)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


@dataclass(frozen=True)
class LesionStyle:
    """How lesions look and where they sit (``generate_study``'s ``style``).

    ``kind_p``: probabilities of the kinds after the first three lesions (which are
    one of each of the first three kinds); ``necrotic_p``: share of lesions over
    1000 mm3 with a necrotic core (the rest enhance solidly, without a rim);
    ``enhancement``: range of the enhancing tissue's MR signal factor.
    The defaults are the ``classic`` generator's.
    """

    kind_p: tuple[tuple[str, float], ...] = (
        ("cortical", 0.45),
        ("skull_base", 0.2),
        ("deep", 0.35),
    )
    necrotic_p: float = 0.85
    enhancement: tuple[float, float] = (0.8, 1.25)


CLASSIC_LESIONS = LesionStyle()
# Solid enhancing lesions, fainter ones, and lesions against the dura and beside the
# middle cerebral arteries (where bright vessels and meninges make them hard to see).
VARIED_LESIONS = LesionStyle(
    kind_p=(("cortical", 0.25), ("skull_base", 0.1), ("deep", 0.25), ("dural", 0.2),
            ("perivascular", 0.2)),
    necrotic_p=0.35,
    enhancement=(0.55, 1.3),
)  # fmt: skip


def make_lesion(
    rng: np.random.Generator,
    volume_mm3: float,
    centre_mm: np.ndarray,
    kind: str,
    style: LesionStyle = CLASSIC_LESIONS,
) -> Lesion:
    ratios = np.exp(rng.uniform(-0.3, 0.3, size=3))
    lobes = rng.normal(scale=0.07, size=10) * (1.0 if volume_mm3 > 200 else 0.4)
    unit = _unit_volume(lobes)
    axes = ratios * (volume_mm3 / (unit * ratios.prod())) ** (1.0 / 3.0)
    r_eq = (3.0 * volume_mm3 / (4.0 * np.pi)) ** (1.0 / 3.0)
    necrotic = volume_mm3 > 1000.0 and rng.uniform() < style.necrotic_p
    return Lesion(
        centre_mm=np.asarray(centre_mm, dtype=float),
        axes_mm=axes,
        rotation=_random_rotation(rng),
        lobes=lobes,
        volume_mm3=float(volume_mm3),
        kind=kind,
        rim_mm=float(min(rng.uniform(1.5, 3.5), 0.45 * r_eq)),
        necrotic=bool(necrotic),
        enhancement=float(rng.uniform(*style.enhancement)),
        edema_mm=float(rng.uniform(0.5, 3.0) + 0.25 * r_eq),
    )


def place_lesions(
    rng: np.random.Generator,
    n: int,
    volume_range_mm3: tuple[float, float],
    style: LesionStyle = CLASSIC_LESIONS,
) -> list[Lesion]:
    """Metastases with log-uniform volumes, some at the cortex and some at the skull base
    (kinds and appearance from ``style``)."""
    lesions: list[Lesion] = []
    lo, hi = np.log(volume_range_mm3[0]), np.log(volume_range_mm3[1])
    # Spread the volumes over the whole range (stratified), then shuffle.
    u = (np.arange(n) + rng.uniform(size=n)) / max(n, 1)
    volumes = np.exp(lo + u * (hi - lo))
    rng.shuffle(volumes)
    kinds = [k for k, _p in style.kind_p]
    probs = [p for _k, p in style.kind_p]
    for i, vol in enumerate(volumes):
        kind = kinds[i % 3] if i < 3 else str(rng.choice(kinds, p=probs))
        for _attempt in range(400):
            les = make_lesion(rng, float(vol), np.zeros(3), kind, style)
            centre = _sample_centre(rng, kind, les.extent_mm)
            if centre is None:
                continue
            les.centre_mm = centre
            if all(
                np.linalg.norm(centre - o.centre_mm) > les.extent_mm + o.extent_mm + 3.0
                for o in lesions
            ):
                lesions.append(les)
                break
        else:  # crowded head: shrink rather than fail
            les = make_lesion(rng, float(volume_range_mm3[0]) * 2, np.zeros(3), "deep", style)
            for _attempt in range(400):
                centre = _sample_centre(rng, "deep", les.extent_mm)
                if centre is not None and all(
                    np.linalg.norm(centre - o.centre_mm) > les.extent_mm + o.extent_mm + 3.0
                    for o in lesions
                ):
                    les.centre_mm = centre
                    lesions.append(les)
                    break
    return lesions


def _inside_brain(p: np.ndarray, margin: float) -> bool:
    d = float(ellipsoid_depth(p[0:1], p[1:2], p[2:3])[0])
    zb = float(skull_base_z(p[0:1], p[1:2])[0])
    return d < -(BRAIN_DEPTH_MM + 2.5 + margin) and p[2] - zb > margin + 3.0


# Inner surface of the skull (the dura) below the skin, mm: scalp + skull.
DURA_DEPTH_MM = SCALP_MM + SKULL_MM
# Nominal course of a middle cerebral artery (x of the right one; mirrored for the left),
# head coordinates in mm: ``vessel_tree`` jitters it by ~2 mm.
MCA_COURSE_MM = np.array([[22.0, -10.0, -26.0], [40.0, -6.0, -16.0], [52.0, 4.0, 2.0]])
MCA_MAX_RADIUS_MM = 1.8


def _inside_skull(p: np.ndarray, margin: float) -> bool:
    """Inside the intracranial space with ``margin`` mm to the dura and the skull base."""
    d = float(ellipsoid_depth(p[0:1], p[1:2], p[2:3])[0])
    zb = float(skull_base_z(p[0:1], p[1:2])[0])
    return d < -(DURA_DEPTH_MM + margin) and p[2] - zb > margin + 3.0


def _dural_centre(rng: np.random.Generator, extent: float) -> np.ndarray | None:
    """A lesion whose surface reaches to within 0-1 mm of the dura (dural-based)."""
    n = rng.normal(size=3)
    n[2] = abs(n[2]) * 0.8 + 0.1
    n /= np.linalg.norm(n)
    t_surface = 1.0 / np.linalg.norm(n / HEAD_AXES_MM)
    p = n * (t_surface - DURA_DEPTH_MM - 0.8 * extent - rng.uniform(0.0, 1.0))
    return p if _inside_skull(p, 0.0) else None


def _perivascular_centre(rng: np.random.Generator, extent: float) -> np.ndarray | None:
    """A lesion beside a middle cerebral artery, 0.5-2 mm from its wall."""
    side = 1.0 if rng.uniform() < 0.5 else -1.0
    seg = int(rng.integers(len(MCA_COURSE_MM) - 1))
    a, b = MCA_COURSE_MM[seg] * [side, 1, 1], MCA_COURSE_MM[seg + 1] * [side, 1, 1]
    on = a + rng.uniform() * (b - a)
    away = rng.normal(size=3)
    t = (b - a) / np.linalg.norm(b - a)
    away -= (away @ t) * t
    away /= np.linalg.norm(away)
    p = on + away * (MCA_MAX_RADIUS_MM + 0.8 * extent + rng.uniform(0.5, 2.0))
    return p if _inside_skull(p, extent * 0.5) else None


def _sample_centre(rng: np.random.Generator, kind: str, extent: float) -> np.ndarray | None:
    if kind == "dural":
        return _dural_centre(rng, extent)
    if kind == "perivascular":
        return _perivascular_centre(rng, extent)
    if kind == "cortical":
        n = rng.normal(size=3)
        n[2] = abs(n[2]) * 0.8 + 0.1
        n /= np.linalg.norm(n)
        t_surface = 1.0 / np.linalg.norm(n / HEAD_AXES_MM)
        p = n * (t_surface - BRAIN_DEPTH_MM - 2.5 - extent - rng.uniform(0.5, 3.0))
    elif kind == "skull_base":
        x, y = rng.uniform(-45, 45), rng.uniform(-40, 60)
        p = np.array([x, y, float(skull_base_z(np.array([x]), np.array([y]))[0])])
        p[2] += extent + 3.0 + rng.uniform(0.5, 4.0)
    else:
        p = rng.uniform(-1, 1, size=3) * HEAD_AXES_MM * 0.5
    return p if _inside_brain(p, extent) else None


def _tube_points(ctrl: np.ndarray, step_mm: float) -> np.ndarray:
    """Densely sampled piecewise-linear curve through control points."""
    pts = [ctrl[0]]
    for a, b in zip(ctrl[:-1], ctrl[1:], strict=True):
        n = max(int(np.ceil(np.linalg.norm(b - a) / step_mm)), 1)
        t = (np.arange(1, n + 1) / n)[:, None]
        pts.append(a + t * (b - a))
    return np.vstack([p.reshape(-1, 3) for p in pts])


def vessel_tree(rng: np.random.Generator) -> list[tuple[np.ndarray, float, str]]:
    """Dural sinuses and a few enhancing arteries/veins as (control points, radius, name)."""
    ax, ay, az = HEAD_AXES_MM - 12.0 - 3.5
    tubes: list[tuple[np.ndarray, float, str]] = []
    phi = np.deg2rad(np.linspace(118, -18, 28))
    sss = np.stack([np.zeros_like(phi), ay * np.cos(phi), az * np.sin(phi)], axis=1)
    # LPS: +y is posterior, so the sinus starts anterior (cos < 0) and runs back over the top.
    tubes.append((sss, rng.uniform(3.0, 4.0), "superior_sagittal_sinus"))
    z_t = sss[-1, 2]
    for side in (-1.0, 1.0):
        psi = np.deg2rad(np.linspace(0, 68, 12))
        t = np.stack([side * ax * np.sin(psi), ay * np.cos(psi), np.full_like(psi, z_t)], axis=1)
        t *= np.array([0.97, 0.97, 1.0])
        end = t[-1]
        sig = np.array([end + [0, -4, -6], end + [0, -8, -14]])
        tubes.append((np.vstack([t, sig]), rng.uniform(2.5, 3.5), "transverse_sigmoid_sinus"))
    # Middle cerebral arteries: from the circle of Willis out through the Sylvian fissure.
    for side in (-1.0, 1.0):
        ctrl = np.array(
            [[side * 5, -8, -30], [side * 22, -10, -26], [side * 40, -6, -16], [side * 52, 4, 2]]
        ) + rng.normal(scale=2.0, size=(4, 3))
        tubes.append((ctrl, rng.uniform(1.2, 1.8), "middle_cerebral_artery"))
    # Cortical veins: random walks on the brain surface.
    for _ in range(int(rng.integers(5, 9))):
        n = rng.normal(size=3)
        n[2] = abs(n[2]) + 0.2
        n /= np.linalg.norm(n)
        pts = []
        d = rng.normal(size=3)
        for _step in range(18):
            t_surface = 1.0 / np.linalg.norm(n / HEAD_AXES_MM)
            pts.append(n * (t_surface - BRAIN_DEPTH_MM - 1.0))
            d = d - (d @ n) * n + rng.normal(scale=0.3, size=3)
            d /= np.linalg.norm(d)
            n = n + d * 0.035
            n /= np.linalg.norm(n)
        tubes.append((np.array(pts), rng.uniform(0.8, 1.4), "cortical_vein"))
    return tubes


class PhantomGrid:
    """The regular grid (head coordinates) on which tissues are painted."""

    def __init__(self, spacing_mm: float) -> None:
        self.h = float(spacing_mm)
        self.shape_xyz = tuple(
            int(np.ceil((BOX_MAX_MM[i] - BOX_MIN_MM[i]) / self.h)) + 1 for i in range(3)
        )
        self.x = (BOX_MIN_MM[0] + self.h * np.arange(self.shape_xyz[0])).astype(np.float32)
        self.y = (BOX_MIN_MM[1] + self.h * np.arange(self.shape_xyz[1])).astype(np.float32)
        self.z = (BOX_MIN_MM[2] + self.h * np.arange(self.shape_xyz[2])).astype(np.float32)

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        return (self.shape_xyz[2], self.shape_xyz[1], self.shape_xyz[0])

    def open_axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.x[None, None, :], self.y[None, :, None], self.z[:, None, None]

    def bbox(self, lo_mm: np.ndarray, hi_mm: np.ndarray) -> tuple[slice, slice, slice]:
        lo = np.floor((np.asarray(lo_mm) - BOX_MIN_MM) / self.h).astype(int)
        hi = np.ceil((np.asarray(hi_mm) - BOX_MIN_MM) / self.h).astype(int) + 1
        lo = np.clip(lo, 0, np.array(self.shape_xyz))
        hi = np.clip(hi, 0, np.array(self.shape_xyz))
        return slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0])

    def points(self, sl: tuple[slice, slice, slice]) -> np.ndarray:
        zz, yy, xx = np.meshgrid(self.z[sl[0]], self.y[sl[1]], self.x[sl[2]], indexing="ij")
        return np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1).astype(np.float64)


Tissue = tuple[float, float] | tuple[np.ndarray, np.ndarray]


def _paint(ct: np.ndarray, mr: np.ndarray, frac: np.ndarray, value: Tissue) -> None:
    """Blend ``value`` = (CT HU, MR signal) into both volumes in place, by ``frac`` in [0, 1]."""
    ct += frac * (value[0] - ct)
    mr += frac * (value[1] - mr)


def _paint_envelope(ct: np.ndarray, mr: np.ndarray, grid: PhantomGrid, d_head: np.ndarray) -> None:
    """Soft tissue of the head and the neck (an elliptic cylinder under the skull)."""
    h = grid.h
    x, y, z = grid.open_axes()
    d_neck = (np.sqrt((x / 55.0) ** 2 + ((y - 10.0) / 62.0) ** 2) * 58.0 - 58.0 + 0.0 * z).astype(
        np.float32
    )
    d_neck = np.maximum(d_neck, z - (-30.0))
    _paint(ct, mr, _soft(np.minimum(d_head, d_neck), h), SOFT)
    _paint(ct, mr, _soft(np.maximum(d_neck, -d_head), h), NECK)


def _paint_skull_and_brain(
    ct: np.ndarray,
    mr: np.ndarray,
    grid: PhantomGrid,
    d_head: np.ndarray,
    sulci: np.ndarray,
    gyri: np.ndarray,
) -> None:
    """Skull vault and base plate, CSF, grey and white matter (depths in mm, float32)."""
    h = grid.h
    x, y, z = grid.open_axes()
    zb = skull_base_z(x, y).astype(np.float32)
    # Skull vault (above the base) and the skull base plate.
    skull_outer = d_head + SCALP_MM
    _paint(ct, mr, _soft(np.maximum(skull_outer, zb - 12.0 - z), h), BONE)
    _paint(ct, mr, _soft(np.maximum(skull_outer + 2.0, zb - 10.0 - z), h), DIPLOE)
    _paint(ct, mr, _soft(np.maximum(skull_outer + 5.0, zb - 4.0 - z), h), BONE)
    # Intracranial space (CSF) and brain.
    inner = skull_outer + SKULL_MM
    _paint(ct, mr, _soft(np.maximum(inner, zb - z), h), CSF)
    brain = np.maximum(d_head + BRAIN_DEPTH_MM + 1.2 * (sulci + 1.0), zb + 2.0 - z)
    _paint(ct, mr, _soft(brain, h), GM)
    white = np.maximum(d_head + BRAIN_DEPTH_MM + 3.5 + 3.0 * (gyri + 1.0), zb + 7.0 - z)
    _paint(ct, mr, _soft(white, h), WM)


def _paint_deep_structures(ct: np.ndarray, mr: np.ndarray, grid: PhantomGrid) -> None:
    """Deep grey nuclei, the lateral ventricles and the third ventricle."""
    h = grid.h
    x, y, z = grid.open_axes()
    for sx in (-1.0, 1.0):
        deep = ellipsoid_depth(x - sx * 17.0, y - 4.0, z - 2.0, np.array([9.0, 13.0, 10.0]))
        _paint(ct, mr, _soft(deep, h), DEEP_GM)
        vent = ellipsoid_depth(x - sx * 8.0, y - 2.0, z - 14.0, np.array([5.0, 26.0, 8.0]))
        _paint(ct, mr, _soft(vent, h), CSF)
    third = ellipsoid_depth(x, y - 2.0, z - 2.0, np.array([1.5, 12.0, 7.0]))
    _paint(ct, mr, _soft(third, h), CSF)


def _paint_vessels(
    ct: np.ndarray, mr: np.ndarray, grid: PhantomGrid, tubes: list[tuple[np.ndarray, float, str]]
) -> None:
    """Enhancing vessels and dural sinuses (control points in mm, radius in mm)."""
    h = grid.h
    for ctrl, radius, _name in tubes:
        pts = _tube_points(ctrl, step_mm=min(h, radius) / 2.0)
        sl = grid.bbox(pts.min(axis=0) - radius - 2 * h, pts.max(axis=0) + radius + 2 * h)
        vox = grid.points(sl)
        if vox.size == 0:
            continue
        dist, _ = cKDTree(pts).query(vox, distance_upper_bound=radius + 2 * h)
        dist = np.where(np.isfinite(dist), dist, radius + 2 * h)
        frac = _soft((dist - radius).reshape(ct[sl].shape), h)
        ct[sl] += frac * (BLOOD[0] - ct[sl])
        mr[sl] += frac * (BLOOD[1] * 0.95 - mr[sl])


def _paint_lesion(
    ct: np.ndarray, mr: np.ndarray, grid: PhantomGrid, les: Lesion, texture: np.ndarray
) -> None:
    """One metastasis: edema, enhancing tissue and (if necrotic) a dark core."""
    h = grid.h
    reach = les.extent_mm + les.edema_mm + 2 * h
    sl = grid.bbox(les.centre_mm - reach, les.centre_mm + reach)
    vox = grid.points(sl)
    d = les.depth(vox).reshape(ct[sl].shape).astype(np.float32)
    tx = texture[sl]
    edema = _soft(d - les.edema_mm, 4.0 * h) * (1.0 - _soft(d, h))
    ct[sl] -= 9.0 * edema
    mr[sl] *= 1.0 - 0.28 * edema
    frac = _soft(d, h)
    ct[sl] += frac * (46.0 + 3.0 * tx - ct[sl])
    mr[sl] += frac * (1450.0 * les.enhancement * (1.0 + 0.08 * tx) - mr[sl])
    if les.necrotic:
        core = _soft(d + les.rim_mm, h)
        ct[sl] += core * (20.0 - ct[sl])
        mr[sl] += core * (360.0 * (1.0 + 0.1 * tx) - mr[sl])


def paint_head(
    rng: np.random.Generator, grid: PhantomGrid, lesions: list[Lesion]
) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """Paint CT (HU) and MR (T1+C) volumes, (z, y, x) float32, on the phantom grid."""
    x, y, z = grid.open_axes()
    ct = np.full(grid.shape_zyx, AIR[0], dtype=np.float32)
    mr = np.full(grid.shape_zyx, AIR[1], dtype=np.float32)
    d_head = ellipsoid_depth(x, y, z).astype(np.float32)
    _paint_envelope(ct, mr, grid, d_head)
    sulci = _random_field(rng, 8, (14.0, 30.0))(x, y, z)
    gyri = _random_field(rng, 8, (10.0, 24.0))(x, y, z)
    texture = _random_field(rng, 6, (6.0, 14.0))(x, y, z)
    _paint_skull_and_brain(ct, mr, grid, d_head, sulci, gyri)
    del sulci, gyri
    _paint_deep_structures(ct, mr, grid)
    # Mild tissue texture on MR, so the brain is not piecewise constant.
    mr *= 1.0 + 0.04 * texture
    ct += 2.0 * texture
    # Enhancing vessels and dural sinuses: bright on contrast T1, not lesions.
    tubes = vessel_tree(rng)
    _paint_vessels(ct, mr, grid, tubes)
    # Metastases with edema, enhancing rim and (in large ones) a necrotic core.
    for les in lesions:
        _paint_lesion(ct, mr, grid, les, texture)
    info = {"vessels": [{"name": n, "radius_mm": float(r)} for _c, r, n in tubes]}
    return ct, mr, info
