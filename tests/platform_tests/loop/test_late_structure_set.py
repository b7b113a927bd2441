"""A structure set that arrives after review started is noted once in the study's report,
as a warning row the viewer's ingest notes show (not only in the plain warnings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.platform_tests.studies.helpers import make_study

pytestmark = pytest.mark.django_db


def _rtstruct(path: Path) -> Path:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.Modality = "RTSTRUCT"
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("rows_before", [[], None])
def test_a_structure_set_during_review_is_one_report_row(tmp_path: Path, rows_before: Any) -> None:
    from lesionloop.loop import flows
    from lesionloop.studies.models import Study

    study = make_study(status="in_review")
    report = {"warnings": ["earlier warning"]}
    if rows_before is not None:
        report["rows"] = [
            {"kind": "warning", "severity": "warning", "message": "earlier warning",
             "files": [], "series": None}
        ]  # fmt: skip
    Study.objects.filter(pk=study.pk).update(report=report)
    assert (
        flows.late_structure_set(study_id=study.pk, files=[_rtstruct(tmp_path / "rs.dcm")]) is None
    )
    study.refresh_from_db()
    new = "1 structure set(s) arrived while the study was in_review"
    assert [w.startswith(new) for w in study.report["warnings"]] == [False, True]
    if rows_before is None:  # an older report: the viewer reads its warnings
        assert "rows" not in study.report
    else:
        rows = study.report["rows"]
        assert [r["kind"] for r in rows] == ["warning", "structure_set_not_applied"]
        assert rows[1]["severity"] == "warning" and rows[1]["message"].startswith(new)
        assert rows[1]["files"] == ["rs.dcm"]
