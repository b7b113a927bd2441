"""Self-describing checkpoints and the model-directory manifest.

A checkpoint (``unet.pt``, ``deepmedic.pt``) is a ``torch.save`` dict holding
everything needed to rebuild and judge the network without the code that
trained it: ``arch``, ``class_name``, ``preset``, ``net_kwargs``, ``state_dict``,
``optimizer``, ``epoch``, ``config`` (the training config as JSON-able dict),
``metrics``, ``history``, ``train_case_ids``, ``val_case_ids``, ``seed``,
``torch_version``, ``created_utc``. A file cannot contain its own hash, so the
sha256 of each weights file lives in ``manifest.json`` beside it; the predictor
refuses files whose hash does not match.

Every file is written atomically: to a temporary file in the same directory,
flushed and fsynced, then ``os.replace``-d over the target.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ml.networks import build_from_kwargs

CHECKPOINT_FORMAT = 1


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> str:
    """Write ``payload`` atomically; returns the sha256 of the written file."""
    missing = {"arch", "preset", "net_kwargs", "state_dict"} - payload.keys()
    if missing:
        raise ValueError(f"checkpoint payload lacks {sorted(missing)}")
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **payload}, buf)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
