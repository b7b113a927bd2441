"""Health of the model registry: the active version's weights are on the storage.

Cheap: a database read and a few ``stat`` calls (no sha256, no torch). The sha256 of
each file is checked when a worker loads the model (``EnsemblePredictor.from_dir``).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings

from lesionloop.core.health import HealthError

from .selectors import model_version_active


def active_model_check() -> str:
    """Detail on success; raises ``HealthError`` when the active version cannot be loaded.

    No active version is healthy: a fresh installation has none until the first training
    is promoted, and studies wait as ``awaiting_model`` meanwhile.
    """
    version = model_version_active()
    if version is None:
        return "no active model yet (studies wait as awaiting_model)"
    folder = Path(settings.STORAGE_ROOT) / version.weights_dir
    manifest_path = folder / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not JSON"
        raise HealthError(
            f"active model {version.name}: {version.weights_dir}/manifest.json: {reason}"
        ) from None
    files = manifest.get("files") or {}
    missing = sorted(
        str(entry.get("path"))
        for entry in files.values()
        if not (folder / str(entry.get("path"))).is_file()
        or (folder / str(entry.get("path"))).stat().st_size == 0
    )
    if not files or missing:
        raise HealthError(
            f"active model {version.name}: weights missing in {version.weights_dir}: "
            + (", ".join(missing) or "the manifest lists no files")
        )
    return f"{version.name} ({len(files)} weight files)"
