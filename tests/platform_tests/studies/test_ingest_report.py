"""GET /api/studies/{id}/ lists what ingest ignored, repaired or doubts (``report.rows``),
each row naming its kind, severity and the files or series it concerns: a real ingest of
a synthetic study carrying several quirks at once."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lesionloop.studies import services
from tests.ml_tests.imaging.fault_builders import (
    duplicate_file,
    localizer_in_ct_series,
    lossy_flag,
    series_files,
    spacing_header,
)

pytestmark = pytest.mark.django_db

QUIRKS: list[Callable[[Path], list[str]]] = [
    localizer_in_ct_series,
    spacing_header,
    lossy_flag,
    duplicate_file,  # last: the copy carries the other edits
]


@pytest.fixture
def quirky_study(tmp_path: Path, synthetic_case: Path) -> tuple[Any, Path]:
    upload = tmp_path / "upload"
    shutil.copytree(synthetic_case / "dicom", upload)
    for quirk in QUIRKS:
        quirk(upload)
    return services.study_import(source=upload), upload


def _rows_by_kind(body: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in body["report"]["rows"]:
        out.setdefault(row["kind"], []).append(row)
    return out


# (kind, severity, series: "ct" / "mr", the files the row names when they are known
# beforehand: a function of the upload)
EXPECTED: list[tuple[str, str, str, Callable[[Path], set[str]]]] = [
    ("localizer_dropped", "info", "ct", lambda up: {"ct/SCOUT.dcm"}),
    ("spacing_header_mismatch", "warning", "ct", lambda up: set()),
    ("duplicate_dropped", "info", "ct", lambda up: set()),
    ("lossy_compression", "warning", "ct", lambda up: set()),
    ("registration", "info", "mr", lambda up: set()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "severity", "series", "files"), EXPECTED, ids=[e[0] for e in EXPECTED]
)
def test_each_quirk_is_a_row_naming_its_files_and_series(
    api: Any,
    cast: Any,
    quirky_study: tuple[Any, Path],
    kind: str,
    severity: str,
    series: str,
    files: Callable[[Path], set[str]],
) -> None:
    study, upload = quirky_study
    response = api(cast.clinician).get(f"/api/studies/{study.pk}/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] != "failed", body["status_reason"]
    (row,) = _rows_by_kind(body)[kind]
    assert set(row) == {"kind", "severity", "message", "files", "series"}
    assert row["severity"] == severity
    assert row["series"] == study.dicom[f"{series}_series_uid"]
    assert row["message"].strip()
    if files(upload):
        assert set(row["files"]) == files(upload)


def test_the_rows_say_which_file_and_numbers(
    api: Any, cast: Any, quirky_study: tuple[Any, Path]
) -> None:
    study, upload = quirky_study
    rows = _rows_by_kind(api(cast.auditor).get(f"/api/studies/{study.pk}/").json())
    (dup,) = rows["duplicate_dropped"]
    # One of the two identical files is dropped: the copy or the slice it copies.
    assert set(dup["files"]) & {"copy.dcm", f"ct/{series_files(upload, 'ct')[7].name}"}
    (spacing,) = rows["spacing_header_mismatch"]
    assert "9 mm" in spacing["message"] and len(spacing["files"]) == 1
    (lossy,) = rows["lossy_compression"]
    assert "ratio 8.5:1" in lossy["message"]
    # Every slice used (one of the two copies), not the scout.
    n_slices = len([p for p in series_files(upload, "ct") if p.name != "SCOUT.dcm"])
    assert len(set(lossy["files"])) == n_slices and "ct/SCOUT.dcm" not in lossy["files"]
    assert not set(lossy["files"]) & set(dup["files"])


def test_a_clean_study_has_none_of_these_rows(api: Any, cast: Any, synthetic_case: Path) -> None:
    study = services.study_import(source=synthetic_case / "dicom")
    rows = api(cast.clinician).get(f"/api/studies/{study.pk}/").json()["report"]["rows"]
    kinds = {r["kind"] for r in rows}
    assert "registration" in kinds
    assert not kinds & {e[0] for e in EXPECTED if e[0] != "registration"}
