"""The active-model check: weights of the active version on the storage (stat only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lesionloop.core.health import HealthError
from lesionloop.registry.health import active_model_check

pytestmark = pytest.mark.django_db


def _weights(
    folder: Path, *, manifest: Any = "ok", unet: bytes = b"w", deepmedic: bytes = b"w"
) -> None:
    folder.mkdir(parents=True)
    files = {"unet": {"path": "unet.pt"}, "deepmedic": {"path": "deepmedic.pt"}}
    if manifest == "ok":
        (folder / "manifest.json").write_text(json.dumps({"files": files}))
    elif manifest is not None:
        (folder / "manifest.json").write_text(manifest)
    for name, content in (("unet.pt", unet), ("deepmedic.pt", deepmedic)):
        if content is not None:
            (folder / name).write_bytes(content)


@pytest.mark.parametrize(
    ("weights", "error"),
    [
        ({}, None),
        ({"manifest": None}, "models/v1/manifest.json: No such file"),
        ({"manifest": "{not json"}, "manifest.json: not JSON"),
        ({"manifest": json.dumps({"files": {}})}, "the manifest lists no files"),
        ({"unet": None}, "weights missing in models/v1: unet.pt"),
        ({"deepmedic": b""}, "weights missing in models/v1: deepmedic.pt"),
        ({"unet": None, "deepmedic": None}, "deepmedic.pt, unet.pt"),
    ],
)
def test_active_model_check(
    versions: Any, settings: Any, tmp_path: Path, weights: dict, error: str | None
) -> None:
    settings.STORAGE_ROOT = tmp_path
    _weights(tmp_path / "models" / "v1", **weights)
    if error is None:
        assert active_model_check() == "v1 (2 weight files)"
    else:
        with pytest.raises(HealthError, match=error):
            active_model_check()


def test_no_active_model_is_healthy(versions: Any) -> None:
    versions.v1.status = "retired"
    versions.v1.save()
    assert active_model_check().startswith("no active model yet")
