"""A write never commits when its response fails; NaN never reaches JSON; masks with
absurdly many labels are refused before anything is stored."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from lesionloop.review.api import serializers as review_serializers
from lesionloop.review.models import Lesion, MaskRevision
from lesionloop.studies.models import Study
from tests.platform_tests.studies.helpers import SHAPE, labels_with_boxes, make_study, put_mask

pytestmark = pytest.mark.django_db
BOXES = [(2, 4, 4, 3, 5, 5), (2, 10, 10, 4, 13, 13), (4, 20, 20, 7, 26, 26)]


def _edited() -> np.ndarray:
    mask = labels_with_boxes(BOXES)
    mask[0, 30:32, 30:32] = 9  # a new lesion
    return mask


def test_nan_in_a_lesion_row_never_reaches_json(api: Any, cast: Any) -> None:
    study = make_study()
    Lesion.objects.filter(study=study, label=1).update(volume_mm3=math.nan, mean_prob=math.inf)
    response = api(cast.clinician).get(f"/api/studies/{study.pk}/lesions/")
    assert response.status_code == 200
    assert b"NaN" not in response.content and b"Infinity" not in response.content
    row = next(r for r in response.json() if r["label"] == 1)
    assert row["volume_mm3"] is None and row["mean_prob"] is None


@pytest.mark.parametrize("spacing", [[math.nan, 3.0, 3.0], [4.0, 0.0, 3.0], [4.0, 3.0, -3.0]])
def test_put_on_a_grid_that_cannot_measure_is_refused_and_stores_nothing(
    api: Any, cast: Any, spacing: list[float]
) -> None:
    study = make_study()
    grid = {**study.grid, "spacing_mm": [s if math.isfinite(s) else "NaN" for s in spacing]}
    Study.objects.filter(pk=study.pk).update(grid=grid)
    response = put_mask(api(cast.clinician), study.pk, _edited(), revision=1)
    assert response.status_code == 409 and response.json()["code"] == "bad_grid"
    assert MaskRevision.objects.filter(study=study).count() == 1
    assert Study.objects.get(pk=study.pk).revision_number == 1


def test_a_response_that_fails_rolls_the_write_back(api: Any, cast: Any, monkeypatch: Any) -> None:
    """The serializer raises after mask_save succeeded: 500, and no revision is stored."""
    study = make_study()

    def broken(self: Any, instance: Any) -> Any:
        raise ValueError("Out of range float values are not JSON compliant")

    monkeypatch.setattr(review_serializers.MaskSavedSerializer, "to_representation", broken)
    response = put_mask(api(cast.clinician), study.pk, _edited(), revision=1)
    assert response.status_code == 500 and response.json()["code"] == "server_error"
    assert MaskRevision.objects.filter(study=study).count() == 1
    assert not Lesion.objects.filter(study=study, label=9).exists()
    assert Study.objects.get(pk=study.pk).revision_number == 1


@pytest.mark.parametrize(
    ("n_labels", "limit", "status"),
    [(3, 3, 200), (4, 3, 400), (SHAPE[0] * SHAPE[1] * SHAPE[2] - 1, 500, 400)],
    ids=["at-the-limit", "one-over", "random-labels"],
)
def test_masks_with_too_many_labels_are_refused(
    api: Any, cast: Any, settings: Any, n_labels: int, limit: int, status: int
) -> None:
    settings.LESIONLOOP_MAX_LESION_LABELS = limit
    study = make_study()
    mask = np.zeros(SHAPE, dtype=np.uint16)
    mask.ravel()[1 : n_labels + 1] = np.arange(1, n_labels + 1, dtype=np.uint16)
    response = put_mask(api(cast.clinician), study.pk, mask, revision=1)
    assert response.status_code == status, response.content
    if status == 400:
        body = response.json()
        assert body["code"] == "bad_mask" and body["labels"] == n_labels
        assert f"at most {limit}" in body["detail"]
        assert MaskRevision.objects.filter(study=study).count() == 1
        assert Lesion.objects.filter(study=study).count() == 3
