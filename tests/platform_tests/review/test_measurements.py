"""Lesion diameters: stored with every lesion row, updated by edits, in the API, the
CSV report and the backfill command."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import pytest
from django.core.management import call_command

from tests.platform_tests.studies.helpers import labels_with_boxes, make_study, put_mask

pytestmark = pytest.mark.django_db

# SPACING (4, 3, 3) mm; DEFAULT_BOXES 1x1x1, 2x3x3, 3x6x6 voxels (z, y, x)
EXPECTED = {
    1: (0.0, 0.0),  # one voxel: centres coincide
    2: (round(math.hypot(6, 6), 2), round(math.sqrt(4**2 + 6**2 + 6**2), 2)),
    3: (round(math.hypot(15, 15), 2), round(math.sqrt(8**2 + 15**2 + 15**2), 2)),
}


def _diameters(rows: list[dict[str, Any]]) -> dict[int, tuple[float, float]]:
    return {r["label"]: (r["longest_axial_diameter_mm"], r["longest_diameter_mm"]) for r in rows}


def test_lesion_api_has_diameters_from_the_prediction(api: Any, cast: Any) -> None:
    study = make_study()
    rows = api(cast.auditor).get(f"/api/studies/{study.pk}/lesions/").json()
    assert _diameters(rows) == EXPECTED
    assert rows[0]["volume_mm3"] == 36.0  # one 4 x 3 x 3 mm voxel: mm3 throughout


@pytest.mark.parametrize(
    ("boxes", "label", "expected"),
    [
        # lesion 2 grows along z to 4 slices: 3D diameter sqrt(12^2 + 6^2 + 6^2)
        (
            [(2, 4, 4, 3, 5, 5), (1, 10, 10, 5, 13, 13), (4, 20, 20, 7, 26, 26)],
            2,
            (8.49, round(math.sqrt(144 + 72), 2)),
        ),
        # lesion 3 shrinks to one slice of 6 x 1 voxels: a line of 15 mm
        ([(2, 4, 4, 3, 5, 5), (2, 10, 10, 4, 13, 13), (4, 20, 20, 5, 26, 21)], 3, (15.0, 15.0)),
        # a new lesion (label 4): two voxels 3-4-5 apart in-plane (9, 12 mm)
        (
            [
                (2, 4, 4, 3, 5, 5),
                (2, 10, 10, 4, 13, 13),
                (4, 20, 20, 7, 26, 26),
                (0, 0, 28, 1, 1, 29),
            ],
            4,
            (0.0, 0.0),
        ),
    ],
)
def test_an_edit_updates_the_diameters(
    api: Any, cast: Any, boxes: list[Any], label: int, expected: tuple[float, float]
) -> None:
    study = make_study()
    response = put_mask(api(cast.clinician), study.pk, labels_with_boxes(boxes), revision=1)
    assert response.status_code == 200, response.content
    assert _diameters(response.json()["lesions"])[label] == expected
    assert study.lesions.get(label=label).longest_diameter_mm == expected[1]


def test_backfill_command_measures_rows_saved_before_measurements(cast: Any) -> None:
    study = make_study()
    study.lesions.update(longest_axial_diameter_mm=None, longest_diameter_mm=None)
    out = io.StringIO()
    call_command("measure_lesions", stdout=out)
    assert "3 lesions measured in 1 studies" in out.getvalue()
    got = {
        les.label: (les.longest_axial_diameter_mm, les.longest_diameter_mm)
        for les in study.lesions.all()
    }
    assert got == EXPECTED
    call_command("measure_lesions", stdout=out)  # idempotent: nothing left to measure
    assert "0 lesions measured" in out.getvalue().splitlines()[-1]
    assert study.audit_events.filter(event_type="lesions_measured").count() == 1


def test_report_export_is_csv_of_kept_lesions_with_measurements(api: Any, cast: Any) -> None:
    study = make_study()
    lesion1 = study.lesions.get(label=1)
    api(cast.clinician).patch(
        f"/api/studies/{study.pk}/lesions/{lesion1.pk}/", {"decision": "rejected"}, format="json"
    )
    for label in (2, 3):
        lesion = study.lesions.get(label=label)
        api(cast.clinician).patch(
            f"/api/studies/{study.pk}/lesions/{lesion.pk}/", {"decision": "accepted"}, format="json"
        )
    # a row saved before measurements existed is measured for the report, not stored
    study.lesions.filter(label=3).update(longest_axial_diameter_mm=None, longest_diameter_mm=None)
    response = api(cast.auditor).get(f"/api/studies/{study.pk}/export/report")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [int(r["label"]) for r in rows] == [2, 3]  # kept only, by volume
    for row in rows:
        label = int(row["label"])
        assert (float(row["longest_axial_diameter_mm"]), float(row["longest_diameter_mm"])) == (
            EXPECTED[label]
        )
        assert row["decided_by"] == "cora" and row["decision"] == "accepted"
    assert float(rows[0]["volume_mm3"]) == 18 * 36.0
    assert study.lesions.get(label=3).longest_diameter_mm is None
    assert study.audit_events.filter(event_type="study_exported", payload__format="report").exists()
