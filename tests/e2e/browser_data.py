"""Test data for the browser tests and the viewer benchmark, made through the platform's
own services and ORM (no HTTP, no worker).

``ready_study`` runs the real ingest (``ml.synthetic.generate_study`` -> DICOM ->
``study_import`` -> ``prepare_study``) on the ``tiny`` grid, then stands in for the
pre-segmentation worker: it turns the synthetic ground truth into a "prediction" that
misses one lesion and adds one false positive, and applies it with
``review.services.study_prediction_apply`` (what the worker calls). ``large_study``
writes a prepared study of any size directly (for the speed benchmark).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class ReadyStudy:
    study: Any
    model_version: Any
    missed: dict[str, Any] = field(default_factory=dict)  # the lesion the "model" missed
    false_positive_label: int = 0


def active_model_version(name: str = "v1-test", **metrics: float) -> Any:
    from lesionloop.registry.models import ModelVersion

    mv = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    if mv is None:
        mv = ModelVersion.objects.create(
            name=name,
            status=ModelVersion.Status.ACTIVE,
            preset="lite",
            metrics=metrics
            or {
                "dsc": 0.71,
                "small_sensitivity": 0.62,
                "large_sensitivity": 0.95,
                "fp_per_study": 0.8,
            },
            code_version="test",
        )
    return mv


def _sphere(
    shape: tuple[int, int, int],
    centre: tuple[float, float, float],
    radius_vox: tuple[float, float, float],
) -> np.ndarray:
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return (
        ((zz - centre[0]) / radius_vox[0]) ** 2
        + ((yy - centre[1]) / radius_vox[1]) ** 2
        + ((xx - centre[2]) / radius_vox[2]) ** 2
    ) <= 1.0


def _apply_prediction(study: Any, mv: Any, labels: np.ndarray, priority: float) -> None:
    from django.db import transaction

    from lesionloop.audit.services import audit_record
    from lesionloop.review.services import study_prediction_apply
    from lesionloop.studies import storage
    from lesionloop.studies.models import Prediction, Study
    from ml.lesions import label_stats

    spacing = study.grid["spacing_mm"]
    stats = label_stats(labels, spacing)
    rng = np.random.default_rng(int(study.pk))
    rows = []
    for label, row in sorted(stats.items()):
        row = dict(row)
        row["label"] = int(label)
        row["mean_prob"] = float(rng.uniform(0.55, 0.95))
        row["max_prob"] = float(min(1.0, row["mean_prob"] + 0.05))
        row["disagreement"] = float(rng.uniform(0.02, 0.4))
        rows.append(row)
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        study_prediction_apply(
            study=locked,
            model_version=mv,
            labels_gz=storage.gzip_array(labels, dtype="uint16"),
            lesions=rows,
            priority=priority,
        )
        Prediction.objects.get_or_create(
            study=locked,
            model_version=mv,
            defaults={"directory": "", "lesions": rows, "priority": priority},
        )
        audit_record(
            event_type="prediction_created",
            study=locked,
            model_version=mv,
            lesions=len(rows),
            note="test fixture standing in for the pre-segmentation worker",
        )


def ready_study(
    *,
    seed: int = 7,
    n_lesions: int = 3,
    priority: float = 0.9,
    description: str = "",
    quirks: Callable[[Path], object] | None = None,
) -> ReadyStudy:
    """A real, imported tiny study with a pre-contour from the active model version;
    ``quirks`` edits the generated DICOM folder (``ct/``, ``mr/``) before the import."""
    import SimpleITK as sitk

    from lesionloop.studies import storage
    from lesionloop.studies.services import study_import
    from ml.imaging.grid import ct_mask_to_model_grid
    from ml.lesions import label_lesions
    from ml.synthetic import generate_study

    src = Path(tempfile.mkdtemp(prefix="ll-e2e-src-"))
    generate_study(src, seed=seed, grid="tiny", n_lesions=n_lesions)
    if quirks is not None:
        quirks(src / "dicom")
    study = study_import(source=src / "dicom", description=description or "MR T1+C / planning CT")
    mv = active_model_version()
    prepared = storage.prepared_dir(study.pk)
    gt_path = src / "ground_truth_labels_ct.nii.gz"
    if not gt_path.exists():
        gt_path = src / "ground_truth_ct.nii.gz"
    gt = ct_mask_to_model_grid(sitk.ReadImage(str(gt_path)), prepared)
    truth, n = label_lesions(gt > 0)
    shape = tuple(int(v) for v in truth.shape)
    missed: dict[str, Any] = {}
    labels = np.zeros(shape, dtype=np.uint16)
    if n:
        # The model misses the smallest real lesion (as models do) and finds the others.
        sizes = np.bincount(truth.ravel())[1:]
        drop = int(np.argmin(sizes)) + 1 if n > 1 else 0
        for lab in range(1, n + 1):
            if lab != drop:
                labels[truth == lab] = lab
        if drop:
            zz, yy, xx = np.nonzero(truth == drop)
            z = int(np.bincount(zz).argmax())
            on = zz == z
            missed = {
                "z": z,
                "y": float(yy[on].mean()),
                "x": float(xx[on].mean()),
                "voxels": int(sizes[drop - 1]),
            }
    # A false positive: a small blob inside the head, away from the real lesions.
    mr = np.load(prepared / "display_mr.npy", mmap_mode="r")
    head = np.asarray(mr) > np.percentile(mr, 60)
    cz, cy, cx = (int(v) for v in np.argwhere(head).mean(axis=0))
    fp = _sphere(shape, (cz, cy, cx), (1.2, 1.6, 1.6)) & (truth == 0)
    labels[fp] = 250
    # Labels 1..N by volume ascending, as the ensemble writes them.
    present = [v for v in np.unique(labels) if v]
    order = sorted(present, key=lambda v: int((labels == v).sum()))
    relabelled = np.zeros_like(labels)
    fp_label = 0
    for new, old in enumerate(order, start=1):
        relabelled[labels == old] = new
        if old == 250:
            fp_label = new
    _apply_prediction(study, mv, relabelled, priority)
    study.refresh_from_db()
    return ReadyStudy(study=study, model_version=mv, missed=missed, false_positive_label=fp_label)


def large_study(
    *,
    shape: tuple[int, int, int] = (80, 512, 512),
    spacing: tuple[float, float, float] = (2.0, 0.6, 0.6),
    n_lesions: int = 12,
    seed: int = 1,
) -> Any:
    """A prepared study written directly (synthetic head, lesions), ready for review."""
    from django.db import transaction

    from lesionloop.studies import storage
    from lesionloop.studies.models import Study

    rng = np.random.default_rng(seed)
    d, h, w = shape
    zz, yy, xx = np.ogrid[:d, :h, :w]
    head = (
        ((zz - d / 2) / (d * 0.48)) ** 2
        + ((yy - h / 2) / (h * 0.42)) ** 2
        + ((xx - w / 2) / (w * 0.36)) ** 2
    )
    mr = np.where(head <= 1.0, 600 + 250 * np.cos(head * 6.0), 0).astype(np.float32)
    mr += rng.normal(0, 25, size=shape).astype(np.float32) * (head <= 1.0)
    ct = np.where(head <= 1.0, 35, -1000).astype(np.float32)
    ct[(head > 0.86) & (head <= 1.0)] = 1200  # skull
    labels = np.zeros(shape, dtype=np.uint16)
    for i in range(n_lesions):
        r_mm = float(rng.uniform(1.5, 9.0))
        c = (rng.uniform(0.3, 0.7) * d, rng.uniform(0.3, 0.7) * h, rng.uniform(0.32, 0.68) * w)
        blob = _sphere(shape, c, (r_mm / spacing[0], r_mm / spacing[1], r_mm / spacing[2])) & (
            labels == 0
        )
        labels[blob] = i + 1
        mr[blob] += 900
    with transaction.atomic():
        study = Study.objects.create(
            status=Study.Status.PROCESSING,
            source="import",
            patient_label=f"BENCH-{seed:03d}",
            description=f"Synthetic {d}x{h}x{w} speed study",
        )
    prepared = storage.prepared_dir(study.pk)
    prepared.mkdir(parents=True, exist_ok=True)
    for name, vol in (("mr", mr), ("ct", ct)):
        arr = np.clip(vol, -32768, 32767).astype(np.int16)
        np.save(prepared / f"display_{name}.npy", arr)
        storage.atomic_write_bytes(
            storage.display_file(study.pk, name), storage.gzip_array(arr, dtype="int16")
        )
    grid = {
        "preset": "paper",
        "shape_dhw": list(shape),
        "spacing_mm": list(spacing),
        "origin_xyz_mm": [-w * spacing[2] / 2, -h * spacing[1] / 2, -d * spacing[0] / 2],
        "direction": [1, 0, 0, 0, 1, 0, 0, 0, 1],
    }
    (prepared / "study.json").write_text(json.dumps({"grid": grid}))
    Study.objects.filter(pk=study.pk).update(
        prepared=True, grid=grid, registration_ok=True, registration={"ok": True}
    )
    study.refresh_from_db()
    mv = active_model_version()
    # Relabel by volume ascending like the ensemble does.
    present = [v for v in np.unique(labels) if v]
    order = sorted(present, key=lambda v: int((labels == v).sum()))
    relabelled = np.zeros_like(labels)
    for new, old in enumerate(order, start=1):
        relabelled[labels == old] = new
    _apply_prediction(study, mv, relabelled, 0.5)
    study.refresh_from_db()
    return study
