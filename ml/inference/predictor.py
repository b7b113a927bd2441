"""The ensemble predictor of ARCHITECTURE.md.

Each network yields a tumour probability map over the whole study; the
ensemble map is their weighted mean, the plain mean (docs/METHOD.md section 2)
unless calibration chose otherwise; lesions are the connected components of
the thresholded ensemble map that reach the model's peak threshold
(``ml.inference.rule.LesionRule``: weight and thresholds are calibrated on the
validation cases at training time and stored in the manifest's ``inference``),
labelled 1..N by volume ascending.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ml.inference.rule import LesionRule
from ml.inference.sliding import head_bbox, predict_deepmedic, predict_in_box, predict_unet
from ml.lesions import lesion_stats, voxel_volume_mm3
from ml.networks.checkpoint import load_checkpoint, network_from_checkpoint


@dataclass(frozen=True)
class LesionSummary:
    label: int
    volume_vox: int
    volume_mm3: float
    centroid_vox: tuple[float, float, float]  # (z, y, x) voxel coordinates
    centroid_mm: tuple[
        float, float, float
    ]  # centroid_vox * spacing_mm (grid frame, origin ignored)
    bbox: tuple[int, int, int, int, int, int]  # z0, y0, x0, z1, y1, x1 (exclusive)
    mean_prob: float
    max_prob: float
    disagreement: float  # mean |unet_prob - deepmedic_prob| inside the lesion

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Prediction:
    unet_prob: np.ndarray
    deepmedic_prob: np.ndarray
    ensemble_prob: np.ndarray
    labels: np.ndarray
    lesions: list[LesionSummary] = field(default_factory=list)
    threshold: float = 0.5
    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)
    peak_threshold: float = 0.5


def summarise_lesions(
    labels: np.ndarray,
    n: int,
    spacing_mm: Sequence[float],
    ensemble_prob: np.ndarray,
    unet_prob: np.ndarray,
    deepmedic_prob: np.ndarray,
) -> list[LesionSummary]:
    """One ``LesionSummary`` per label 1..n of ``labels`` (``ml.lesions.lesion_stats``).

    ``labels``: (D, H, W) lesions labelled 1..n (every label present, as
    ``LesionRule.label`` makes them); ``spacing_mm``: (z, y, x) in mm, checked by
    ``voxel_volume_mm3`` (``ValueError`` unless three positive numbers); the three
    probability maps are (D, H, W). ``mean_prob`` / ``max_prob`` are of the ensemble
    map, ``disagreement`` the mean |unet_prob - deepmedic_prob| inside the lesion.
    """
    if n == 0:
        return []
    voxel_volume_mm3(spacing_mm)
    stats = lesion_stats(
        labels, spacing_mm, prob=ensemble_prob, disagreement=(unet_prob, deepmedic_prob)
    )
    out = []
    for i in range(1, n + 1):
        s = stats[i]
        out.append(
            LesionSummary(
                label=i,
                volume_vox=s.volume_vox,
                volume_mm3=s.volume_mm3,
                centroid_vox=s.centroid_vox,
                centroid_mm=s.centroid_mm,
                bbox=s.bbox,
                mean_prob=float(s.mean_prob),  # type: ignore[arg-type]
                max_prob=float(s.max_prob),  # type: ignore[arg-type]
                disagreement=float(s.disagreement),  # type: ignore[arg-type]
            )
        )
    return out


class EnsemblePredictor:
    """U-Net + DeepMedic ensemble. Build with :meth:`from_dir` or from networks."""

    def __init__(
        self,
        unet: nn.Module,
        deepmedic: nn.Module,
        *,
        device: str | torch.device = "cpu",
        threshold: float = 0.5,
        peak_threshold: float | None = None,
        unet_weight: float = 0.5,
        slab_depth: int = 8,
        slab_stride: int = 4,
        tile_depth: int = 64,
        crop_to_head: bool = True,
        connectivity: int = 26,
        manifest: dict[str, Any] | None = None,
    ) -> None:
        self.rule = LesionRule(
            float(threshold),
            float(threshold if peak_threshold is None else peak_threshold),
            float(unet_weight),
            int(connectivity),
        )
        self.device = torch.device(device)
        self.unet = unet.to(self.device).eval()
        self.deepmedic = deepmedic.to(self.device).eval()
        self.threshold = float(threshold)
        self.slab_depth = int(slab_depth)
        self.slab_stride = int(slab_stride)
        self.tile_depth = int(tile_depth)
        self.crop_to_head = bool(crop_to_head)
        self.connectivity = int(connectivity)
        self.manifest = manifest or {}

    @classmethod
    def from_dir(
        cls, model_dir: str | Path, device: str = "cpu", **overrides: Any
    ) -> EnsemblePredictor:
        """Load ``unet.pt`` and ``deepmedic.pt`` after checking their sha256 in ``manifest.json``."""
        model_dir = Path(model_dir)
        manifest = json.loads((model_dir / "manifest.json").read_text())
        nets = {}
        for arch in ("unet", "deepmedic"):
            entry = manifest["files"][arch]
            ckpt = load_checkpoint(model_dir / entry["path"], expected_sha256=entry["sha256"])
            if ckpt["arch"] != arch:
                raise ValueError(f"{entry['path']} holds a {ckpt['arch']!r}, expected {arch!r}")
            nets[arch] = network_from_checkpoint(ckpt)
        inference = dict(manifest.get("inference", {}))
        inference.update(overrides)
        return cls(nets["unet"], nets["deepmedic"], device=device, manifest=manifest, **inference)

    def rule_description(self) -> str:
        """How lesions are cut from the two maps, in words (CLIs, benchmarks)."""
        return self.rule.describe()

    def probabilities(self, model_input: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(unet_prob, deepmedic_prob), each float32 (D, H, W)."""
        if model_input.ndim != 4 or model_input.shape[0] != 2:
            raise ValueError(f"model_input must be (2, D, H, W), got {model_input.shape}")
        image = np.ascontiguousarray(model_input, dtype=np.float32)
        box = head_bbox(image) if self.crop_to_head else None
        unet_prob = predict_in_box(
            lambda im: predict_unet(
                self.unet,
                im,
                slab_depth=self.slab_depth,
                stride=self.slab_stride,
                device=self.device,
            ),
            image,
            box,
        )
        dm_prob = predict_in_box(
            lambda im: predict_deepmedic(
                self.deepmedic, im, tile_depth=self.tile_depth, device=self.device
            ),
            image,
            box,
        )
        return unet_prob, dm_prob

    def predict(self, model_input: np.ndarray, spacing_mm: Sequence[float]) -> Prediction:
        unet_prob, dm_prob = self.probabilities(model_input)
        return self.combine(unet_prob, dm_prob, spacing_mm)

    def combine(
        self, unet_prob: np.ndarray, dm_prob: np.ndarray, spacing_mm: Sequence[float]
    ) -> Prediction:
        """Ensemble two probability maps and list the lesions (also used by experiments)."""
        ensemble = self.rule.lesion_map(unet_prob, dm_prob)
        labels, n = self.rule.label(ensemble)
        lesions = summarise_lesions(labels, n, spacing_mm, ensemble, unet_prob, dm_prob)
        return Prediction(
            unet_prob=unet_prob.astype(np.float32, copy=False),
            deepmedic_prob=dm_prob.astype(np.float32, copy=False),
            ensemble_prob=ensemble,
            labels=labels,
            lesions=lesions,
            threshold=self.threshold,
            spacing_mm=tuple(float(s) for s in spacing_mm),
            peak_threshold=self.rule.peak_threshold,
        )
