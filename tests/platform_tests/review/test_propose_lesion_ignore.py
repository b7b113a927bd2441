"""POST propose-lesion with ``ignore_labels``: lesions erased in the viewer and not saved
yet count as free, so a click where one was proposes a lesion there (QA: click to add
looked at the saved mask, not the screen).

The bright 3 x 5 x 5 MR lesion of test_propose_lesion (slices 1-3, rows 22-26, columns
4-8, 75 voxels) is saved here as lesion 4 (DEFAULT_BOXES hold lesions 1-3)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.platform_tests.review.test_propose_lesion import _with_mr_lesion
from tests.platform_tests.studies.helpers import DEFAULT_BOXES, make_study

pytestmark = pytest.mark.django_db
CLICK = {"z": 2, "y": 23, "x": 6}


# (ignore_labels sent, status, code, voxels proposed)
@pytest.mark.parametrize(
    ("ignore", "status", "code", "voxels"),
    [
        (None, 422, "no_lesion_found", None),  # lesion 4 is on the saved mask
        ([], 422, "no_lesion_found", None),
        ([2], 422, "no_lesion_found", None),  # another lesion erased: still lesion 4
        ([4], 200, None, 75),  # lesion 4 erased here: its voxels are free
        ([2, 4, 4], 200, None, 75),
        ([0], 400, "invalid", None),
        ([65536], 400, "invalid", None),
        (["four"], 400, "invalid", None),
        ("4", 400, "invalid", None),
        (list(range(1, 1002)), 400, "invalid", None),
    ],
)
def test_erased_labels_count_as_free(
    api: Any, cast: Any, ignore: Any, status: int, code: str | None, voxels: int | None
) -> None:
    study = make_study(boxes=[*DEFAULT_BOXES, (1, 22, 4, 4, 27, 9)])
    _with_mr_lesion(study)
    payload = dict(CLICK) if ignore is None else {**CLICK, "ignore_labels": ignore}
    response = api(cast.clinician).post(
        f"/api/studies/{study.pk}/propose-lesion/", payload, format="json"
    )
    assert response.status_code == status, response.content
    body = response.json()
    if code is not None:
        assert body["code"] == code and body["detail"]
    if status == 422:
        assert body["label"] == 4 and "lesion 4" in body["detail"]
    if voxels is not None:
        assert body["volume_vox"] == voxels and body["bbox"] == [1, 22, 4, 4, 27, 9]
    study.refresh_from_db()
    assert study.revision_number == 1 and study.lesions.count() == 4


def test_the_service_refuses_bad_labels_itself() -> None:
    from lesionloop.core.exceptions import DomainError
    from lesionloop.review.services.proposals import lesion_propose

    study = make_study()
    with pytest.raises(DomainError) as caught:
        lesion_propose(study_id=study.pk, point_zyx=(2, 23, 6), ignore_labels=[0])
    assert caught.value.code == "bad_labels"
