"""The short form of ``benchmarks/fuzz_api.py``: ~50 cases through the same code."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from benchmarks.fuzz_api import complete_prepared, run_fuzz
from tests.platform_tests.studies.helpers import make_study

pytestmark = pytest.mark.django_db


@pytest.mark.filterwarnings("ignore")
def test_fuzz_short(cast: Any, synthetic_case: Path, tmp_path: Path) -> None:
    warnings.simplefilter("ignore")
    study = make_study()
    complete_prepared(study.pk)
    report = run_fuzz(
        cases=50,
        seed=7,
        dicom_dir=synthetic_case / "dicom",
        work_dir=tmp_path,
        admin=cast.admin,
        study=study,
    )
    assert report.tried == 50
    assert report.server_errors == 0 and report.stuck == 0, report.failures
