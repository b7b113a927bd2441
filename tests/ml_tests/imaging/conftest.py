"""Fixtures for the imaging tests: one tiny synthetic study, copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ml.synthetic import generate_study


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic study (axial MR, 3 lesions); never modify it, copy it."""
    out = tmp_path_factory.mktemp("imaging") / "study"
    generate_study(out, seed=11, grid="tiny", n_lesions=3, mr_orientation="axial")
    return out


@pytest.fixture
def upload(tiny_study: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny study's DICOM folder (ct/ and mr/ sub-folders)."""
    dst = tmp_path / "upload"
    shutil.copytree(tiny_study / "dicom", dst)
    return dst
