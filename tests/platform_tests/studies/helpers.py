"""Builders for platform tests: fake prepared studies (fast) and real synthetic DICOM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

SHAPE = (8, 32, 32)
SPACING = (4.0, 3.0, 3.0)


def model_version(name: str = "v1", status: str = "active", weights_dir: str = "") -> Any:
    from lesionloop.registry.models import ModelVersion

    return ModelVersion.objects.create(
        name=name, status=status, preset="tiny", weights_dir=weights_dir or f"models/{name}"
    )


def labels_with_boxes(boxes: list[tuple[int, int, int, int, int, int]]) -> np.ndarray:
    """A uint16 label mask; box i (z0,y0,x0,z1,y1,x1) gets label i+1."""
    labels = np.zeros(SHAPE, dtype=np.uint16)
    for i, (z0, y0, x0, z1, y1, x1) in enumerate(boxes):
        labels[z0:z1, y0:y1, x0:x1] = i + 1
    return labels


DEFAULT_BOXES = [(2, 4, 4, 3, 5, 5), (2, 10, 10, 4, 13, 13), (4, 20, 20, 7, 26, 26)]


def write_prepared(study_id: int, *, seed: int = 0) -> Path:
    """A minimal prepared dir (no CT reference): enough for review and serving."""
    from lesionloop.studies import storage

    rng = np.random.default_rng(seed)
    out = storage.prepared_dir(study_id)
    out.mkdir(parents=True, exist_ok=True)
    for channel in storage.DISPLAY_CHANNELS:
        vol = rng.integers(-1000, 2000, size=SHAPE, dtype=np.int16)
        np.save(out / f"display_{channel}.npy", vol)
        (out / f"display_{channel}.i16.gz").write_bytes(storage.gzip_array(vol, dtype="int16"))
    np.save(out / "model_input.npy", rng.standard_normal((2, *SHAPE)).astype(np.float32))
    (out / "study.json").write_text(json.dumps({"grid": {"shape_dhw": list(SHAPE)}}))
    return out


def make_study(
    *,
    status: str = "ready",
    boxes: list[tuple[int, int, int, int, int, int]] | None = None,
    mv: Any = None,
    patient_label: str = "P001",
    registration_ok: bool = True,
) -> Any:
    """A prepared, pre-segmented study (revision 1 by the model), in ``status``."""
    from lesionloop.review.services import study_prediction_apply
    from lesionloop.studies import storage
    from lesionloop.studies.models import Prediction, Study
    from lesionloop.studies.priority import review_priority
    from ml.lesions import label_stats

    study = Study.objects.create(
        patient_label=patient_label,
        description="SRS PLANNING HEAD",
        status="processing",
        prepared=True,
        grid={
            "preset": "tiny",
            "shape_dhw": list(SHAPE),
            "spacing_mm": list(SPACING),
            "origin_xyz_mm": [0.0, 0.0, 0.0],
            "direction": [1, 0, 0, 0, 1, 0, 0, 0, 1],
        },
        registration={"ok": registration_ok, "message": "ok" if registration_ok else "poor fit"},
        registration_ok=registration_ok,
        report={"found": ["CT", "MR"], "ignored": []},
    )
    write_prepared(study.pk, seed=study.pk)
    mv = mv or model_version(name=f"m{study.pk}", status="retired")
    labels = labels_with_boxes(DEFAULT_BOXES if boxes is None else boxes)
    stats = label_stats(labels, SPACING)
    lesions = []
    for i, row in enumerate(stats.values()):
        lesions.append({**row, "mean_prob": 0.5 + 0.1 * i, "max_prob": 0.9, "disagreement": 0.1})
    Prediction.objects.create(
        study=study,
        model_version=mv,
        directory="",
        lesions=lesions,
        priority=review_priority(lesions),
    )
    study_prediction_apply(
        study=study,
        model_version=mv,
        labels_gz=storage.gzip_array(labels, dtype="uint16"),
        lesions=lesions,
        priority=review_priority(lesions),
    )
    if status != "ready":
        Study.objects.filter(pk=study.pk).update(status=status)
    study.refresh_from_db()
    return study


def mask_bytes(labels: np.ndarray) -> bytes:
    from lesionloop.studies import storage

    return storage.gzip_array(labels, dtype="uint16")


def put_mask(
    client: Any, study_id: int, labels: np.ndarray, *, revision: int | None, reason: str = ""
) -> Any:
    headers: dict[str, str] = {"HTTP_CONTENT_ENCODING": "gzip"}
    if revision is not None:
        headers["HTTP_IF_MATCH"] = f'"{revision}"'
    if reason:
        headers["HTTP_X_REASON"] = reason
    return client.put(
        f"/api/studies/{study_id}/mask/",
        data=mask_bytes(labels),
        content_type="application/octet-stream",
        **headers,
    )


def synthetic_dicom(out_dir: Path, *, seed: int = 1) -> Path:
    """Real synthetic DICOM (ml.synthetic, grid tiny); returns the folder with ct/ and mr/."""
    from ml.synthetic import generate_study

    if not (out_dir / "dicom").exists():
        generate_study(out_dir, seed=seed, grid="tiny")
    return out_dir


def tiny_model_dir(out_dir: Path) -> Path:
    """An untrained but valid ensemble model dir (lite networks, random weights)."""
    import torch

    from ml.atomic import atomic_write_json
    from ml.networks import build
    from ml.networks.checkpoint import save_checkpoint

    torch.manual_seed(0)
    files = {}
    for arch in ("unet", "deepmedic"):
        net = build(arch, "lite")
        from ml.networks import NETWORK_PRESETS

        sha = save_checkpoint(
            out_dir / f"{arch}.pt",
            {
                "arch": arch,
                "preset": "lite",
                "net_kwargs": NETWORK_PRESETS["lite"][arch],
                "state_dict": net.state_dict(),
            },
        )
        files[arch] = {"path": f"{arch}.pt", "sha256": sha}
    # No slab overlap: the test model only has to run, not to be good.
    atomic_write_json(out_dir / "manifest.json", {"files": files, "inference": {"slab_stride": 8}})
    return out_dir
