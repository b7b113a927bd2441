"""Fixtures shared by the studies, review and audit tests (imported by their conftests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .helpers import synthetic_dicom


@pytest.fixture(scope="session")
def synthetic_case(tmp_path_factory: Any) -> Path:
    """One real synthetic study (DICOM + ground truth), generated once per session."""
    return synthetic_dicom(tmp_path_factory.mktemp("synthetic") / "case1", seed=1)


@pytest.fixture(autouse=True)
def _storage(tmp_path: Path, settings: Any) -> Path:
    """Each test writes its study files to its own folder."""
    settings.STORAGE_ROOT = tmp_path / "storage"
    settings.STORAGE_ROOT.mkdir()
    return settings.STORAGE_ROOT
