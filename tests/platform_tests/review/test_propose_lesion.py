"""POST /api/studies/{id}/propose-lesion/: click to add, proposed and never stored."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from tests.platform_tests.studies.helpers import SHAPE, make_study

pytestmark = pytest.mark.django_db

# A bright 3 x 5 x 5 voxel lesion (slices 1-3, rows 22-26, columns 4-8) on a flat
# brain-like MR; the study's model lesions are elsewhere (DEFAULT_BOXES).
LESION = (slice(1, 4), slice(22, 27), slice(4, 9))


def _with_mr_lesion(study: Any) -> None:
    from lesionloop.studies import storage

    rng = np.random.default_rng(0)
    mr = (800 + rng.normal(0, 10, SHAPE)).astype(np.int16)
    mr[LESION] = 1400
    np.save(storage.prepared_dir(study.pk) / "display_mr.npy", mr)


def _decode(body: dict[str, Any]) -> np.ndarray:
    z0, y0, x0, z1, y1, x1 = body["bbox"]
    flat = np.zeros((z1 - z0) * (y1 - y0) * (x1 - x0), dtype=bool)
    pos, inside = 0, False
    for run in body["runs"]:
        flat[pos : pos + run] = inside
        pos, inside = pos + run, not inside
    assert pos == flat.size
    return flat.reshape(z1 - z0, y1 - y0, x1 - x0)


def test_a_click_proposes_the_lesion_and_stores_nothing(api: Any, cast: Any) -> None:
    study = make_study()
    _with_mr_lesion(study)
    events = study.audit_events.count()
    response = api(cast.clinician).post(
        f"/api/studies/{study.pk}/propose-lesion/", {"z": 2, "y": 23, "x": 6}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["method"] == "image" and body["bbox"] == [1, 22, 4, 4, 27, 9]
    assert _decode(body).all() and body["volume_vox"] == 75
    assert body["volume_mm3"] == 75 * 36.0
    assert body["longest_axial_diameter_mm"] == round(math.hypot(12, 12), 2)
    assert body["longest_diameter_mm"] == round(math.sqrt(8**2 + 12**2 + 12**2), 2)
    assert body["revision"] == 1 and body["radius_mm"] == 20.0
    study.refresh_from_db()
    assert study.revision_number == 1 and study.lesions.count() == 3
    assert study.audit_events.count() == events


def test_the_probability_map_is_used_when_it_has_a_peak(api: Any, cast: Any) -> None:
    from lesionloop.studies import storage

    study = make_study()
    _with_mr_lesion(study)
    prob = np.zeros(SHAPE, dtype=np.float16)
    prob[2, 22:25, 4:7] = 0.4  # a sub-threshold bump the model missed: 3 x 3 voxels
    folder = storage.study_dir(study.pk) / "predictions" / f"mv{study.model_version_id}"
    folder.mkdir(parents=True)
    np.save(folder / "ensemble_prob.f16.npy", prob)
    response = api(cast.clinician).post(
        f"/api/studies/{study.pk}/propose-lesion/",
        {"z": 2, "y": 23, "x": 5, "radius_mm": 10},
        format="json",
    )
    body = response.json()
    assert body["method"] == "probability" and body["volume_vox"] == 9
    assert body["bbox"] == [2, 22, 4, 3, 25, 7] and body["longest_diameter_mm"] == round(
        math.hypot(6, 6), 2
    )


@pytest.mark.parametrize(
    ("who", "payload", "status", "code"),
    [
        ("clinician", {"z": 8, "y": 0, "x": 0}, 400, "bad_point"),  # D = 8
        ("clinician", {"z": 0, "y": 0, "x": -1}, 400, "bad_point"),
        ("clinician", {"z": 2, "y": 23, "x": 6, "radius_mm": 0}, 400, "bad_radius"),
        ("clinician", {"z": 2, "y": 23, "x": 6, "radius_mm": 51}, 400, "bad_radius"),
        ("clinician", {"z": 2, "y": 23, "x": 6, "colour": "red"}, 400, "unknown_field"),
        ("clinician", {"z": 2, "y": 23}, 400, "invalid"),
        ("clinician", {"z": 2, "y": 11, "x": 11}, 422, "no_lesion_found"),  # on lesion 2
        ("clinician", {"z": 6, "y": 8, "x": 28}, 422, "no_lesion_found"),  # flat brain
        ("auditor", {"z": 2, "y": 23, "x": 6}, 403, None),
    ],
)
def test_refusals(
    api: Any, cast: Any, who: str, payload: dict[str, Any], status: int, code: str | None
) -> None:
    study = make_study()
    _with_mr_lesion(study)
    response = api(getattr(cast, who)).post(
        f"/api/studies/{study.pk}/propose-lesion/", payload, format="json"
    )
    assert response.status_code == status, response.content
    body = response.json()
    assert body["detail"]
    if code is not None:
        assert body["code"] == code


@pytest.mark.parametrize(
    ("status", "code"), [("approved", "approved"), ("processing", "not_ready")]
)
def test_only_reviewable_studies(api: Any, cast: Any, status: str, code: str) -> None:
    study = make_study(status=status)
    response = api(cast.clinician).post(
        f"/api/studies/{study.pk}/propose-lesion/", {"z": 2, "y": 23, "x": 6}, format="json"
    )
    assert response.status_code == 409 and response.json()["code"] == code
