"""Click to add on the real part: a study imported from synthetic DICOM (PostgreSQL,
real files); the clinician clicks the lesion the model missed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.e2e.browser_data import ready_study

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("seed", [7, 21])
def test_click_on_the_missed_lesion_proposes_it(api: Any, cast: Any, seed: int) -> None:
    from lesionloop.review.services import current_mask

    ready = ready_study(seed=seed, n_lesions=3)
    missed = ready.missed
    assert missed, "the fixture misses its smallest lesion"
    click = {"z": missed["z"], "y": round(missed["y"]), "x": round(missed["x"])}
    response = api(cast.clinician).post(
        f"/api/studies/{ready.study.pk}/propose-lesion/", click, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    z0, y0, x0, z1, y1, x1 = body["bbox"]
    assert z0 <= click["z"] < z1 and y0 <= click["y"] < y1 and x0 <= click["x"] < x1
    # about the missed lesion's size, never over the lesions already on the mask
    assert missed["voxels"] / 3 <= body["volume_vox"] <= missed["voxels"] * 3, (body, missed)
    mask = current_mask(ready.study)[z0:z1, y0:y1, x0:x1]
    flat = np.zeros(mask.size, dtype=bool)
    pos, inside = 0, False
    for run in body["runs"]:
        flat[pos : pos + run] = inside
        pos, inside = pos + run, not inside
    assert not np.any(mask.ravel()[flat])
    assert body["longest_diameter_mm"] >= body["longest_axial_diameter_mm"] >= 0
