"""Self-describing checkpoints and the model-directory manifest.

A checkpoint (``unet.pt``, ``deepmedic.pt``) is a ``torch.save`` dict holding
everything needed to rebuild and judge the network without the code that
trained it: ``arch``, ``class_name``, ``preset``, ``net_kwargs``, ``state_dict``,
``optimizer``, ``epoch``, ``config`` (the training config as JSON-able dict),
``metrics``, ``history``, ``train_case_ids``, ``val_case_ids``, ``seed``,
``torch_version``, ``created_utc``. A file cannot contain its own hash, so the
sha256 of each weights file lives in ``manifest.json`` beside it; the predictor
refuses files whose hash does not match.

Every file is written atomically (``ml.atomic``): to a temporary file in the same
directory, flushed and fsynced, then ``os.replace``-d over the target.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ml.atomic import atomic_write_bytes, sha256_bytes, sha256_file

# Re-exported: callers (ml.training.ensemble) still import it from here.
from ml.atomic import atomic_write_json as atomic_write_json
from ml.networks import build_from_kwargs

CHECKPOINT_FORMAT = 1


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> str:
    """Write ``payload`` atomically; returns the sha256 of the written file."""
    missing = {"arch", "preset", "net_kwargs", "state_dict"} - payload.keys()
    if missing:
        raise ValueError(f"checkpoint payload lacks {sorted(missing)}")
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **payload}, buf)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return sha256_bytes(data)


def load_checkpoint(path: str | Path, expected_sha256: str | None = None) -> dict[str, Any]:
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise ValueError(f"{path}: sha256 {actual} does not match manifest {expected_sha256}")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a LesionLoop checkpoint (format {CHECKPOINT_FORMAT})")
    return ckpt


def network_from_checkpoint(ckpt: dict[str, Any]) -> nn.Module:
    net = build_from_kwargs(ckpt["arch"], ckpt["net_kwargs"])
    net.load_state_dict(ckpt["state_dict"])
    return net.eval()
