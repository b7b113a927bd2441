"""Named presets shared by imaging (the model grid) and the networks.

``paper`` is the configuration of the seed paper (docs/METHOD.md): axial slices of
512x512 at 0.6 x 0.6 mm and 2 mm slice thickness, full-size networks.
``lite`` is a CPU-sized version of the same architectures on a coarser grid.
``tiny`` is for tests and the end-to-end loop only: a very coarse grid with the
``lite`` networks.

Spacings are in array order ``(z, y, x)`` in millimetres.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class GridSpec:
    """The model grid: fixed in-plane size, variable number of slices."""

    name: str
    in_plane_size: int  # H == W, voxels; divisible by 16 (four 2x2x1 poolings)
    in_plane_spacing_mm: float
    slice_thickness_mm: float
    network_preset: str  # "paper" or "lite"

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        return (self.slice_thickness_mm, self.in_plane_spacing_mm, self.in_plane_spacing_mm)

    @property
    def voxel_volume_mm3(self) -> float:
        z, y, x = self.spacing_mm
        return z * y * x

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


GRID_PRESETS: dict[str, GridSpec] = {
    "paper": GridSpec("paper", 512, 0.6, 2.0, "paper"),
    "lite": GridSpec("lite", 256, 1.0, 2.0, "lite"),
    "tiny": GridSpec("tiny", 64, 3.0, 4.0, "lite"),
}


def grid_preset(name: str) -> GridSpec:
    try:
        return GRID_PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown grid preset {name!r}; choose one of {sorted(GRID_PRESETS)}"
        ) from None
