"""A label whose voxels all disappear in a saved mask: its lesion row follows the mask
(0 voxels, 0 mm3, no diameters, rejected) in the save's answer and in GET lesions/, and
it keeps where it stood (centroid, largest slice) and what the model said (p, Δ).

Default boxes on the 4 x 3 x 3 mm grid: lesion 1 = 1 voxel (36 mm3), lesion 2 = 2 x 3 x 3
= 18 voxels (648 mm3), lesion 3 = 3 x 6 x 6 = 108 voxels (3888 mm3)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

from lesionloop.review.models import Lesion
from tests.platform_tests.studies.helpers import (
    DEFAULT_BOXES,
    labels_with_boxes,
    make_study,
    put_mask,
)

pytestmark = pytest.mark.django_db
VOX_MM3 = 4.0 * 3.0 * 3.0


def erase_1(mask: np.ndarray) -> None:
    mask[mask == 1] = 0


def erase_1_and_2(mask: np.ndarray) -> None:
    mask[(mask == 1) | (mask == 2)] = 0


def paint_3_over_2(mask: np.ndarray) -> None:
    mask[mask == 2] = 3  # lesion 3 drawn over all of lesion 2


# (edit, labels erased, {label: voxels left} of the others)
CASES = [
    (erase_1, {1}, {2: 18, 3: 108}),
    (erase_1_and_2, {1, 2}, {3: 108}),
    (paint_3_over_2, {2}, {1: 1, 3: 108 + 18}),
]


@pytest.mark.parametrize(
    ("edit", "erased", "left"), CASES, ids=lambda c: getattr(c, "__name__", None)
)
def test_erased_labels_rows_follow_the_saved_mask(
    api: Any, cast: Any, edit: Any, erased: set[int], left: dict[int, int]
) -> None:
    study = make_study()
    before = {les.label: les for les in Lesion.objects.filter(study=study)}
    assert all(before[label].longest_diameter_mm is not None for label in erased)
    mask = labels_with_boxes(DEFAULT_BOXES)
    edit(mask)
    response = put_mask(api(cast.clinician), study.pk, mask, revision=1, reason="erase")
    assert response.status_code == 200, response.content
    listed = api(cast.clinician).get(f"/api/studies/{study.pk}/lesions/")
    assert listed.status_code == 200
    rows = listed.json()
    rows = rows["results"] if isinstance(rows, dict) else rows
    for source in (response.json()["lesions"], rows):
        by_label = {row["label"]: row for row in source}
        assert set(by_label) == {1, 2, 3}
        for label in erased:
            row = by_label[label]
            assert row["volume_mm3"] == 0.0, row
            assert row["longest_axial_diameter_mm"] is None and row["longest_diameter_mm"] is None
            assert row["decision"] == "rejected" and row["decided_by"] == "cora"
            # Where it stood and what the model said are kept.
            assert row["centroid_vox"] == before[label].centroid_vox
            assert row["largest_slice"] == before[label].largest_slice
            assert row["mean_prob"] == pytest.approx(before[label].mean_prob)
        for label, voxels in left.items():
            assert by_label[label]["volume_mm3"] == pytest.approx(voxels * VOX_MM3)
    stored = {les.label: les.volume_vox for les in Lesion.objects.filter(study=study)}
    assert stored == {**dict.fromkeys(erased, 0), **left}
    study.refresh_from_db()
    assert study.lesion_count == len(left)
    assert study.smallest_lesion_mm3 == pytest.approx(min(left.values()) * VOX_MM3)


def test_saving_the_same_mask_again_changes_no_erased_row(api: Any, cast: Any) -> None:
    study = make_study()
    mask = labels_with_boxes(DEFAULT_BOXES)
    erase_1(mask)
    assert put_mask(api(cast.clinician), study.pk, mask, revision=1).status_code == 200
    again = put_mask(api(cast.clinician), study.pk, mask, revision=2)
    assert again.status_code == 200, again.content
    row = next(r for r in again.json()["lesions"] if r["label"] == 1)
    assert (row["volume_mm3"], row["decision"], row["longest_diameter_mm"]) == (
        0.0,
        "rejected",
        None,
    )


def test_the_case_page_preloads_a_lesion_still_there(api: Any, cast: Any, client: Any) -> None:
    """The page preloads the smallest lesion's slice; an erased row (0 mm3) is skipped."""
    boxes = [(2, 4, 4, 3, 5, 5), (5, 10, 10, 7, 13, 13), (4, 20, 20, 7, 26, 26)]
    study = make_study(boxes=boxes)
    by_label = {les.label: les for les in Lesion.objects.filter(study=study)}
    assert (by_label[1].largest_slice, by_label[2].largest_slice) == (2, 5)
    client.force_login(cast.clinician)
    preload = "/volume/mr/?slice={}"
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert preload.format(by_label[1].largest_slice) in page  # lesion 1: 36 mm3, the smallest
    mask = labels_with_boxes(boxes)
    erase_1(mask)
    assert put_mask(api(cast.clinician), study.pk, mask, revision=1).status_code == 200
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert preload.format(by_label[2].largest_slice) in page  # lesion 2: 648 mm3


def test_measure_all_repairs_erased_rows_saved_with_their_old_size(api: Any, cast: Any) -> None:
    """Rows erased before this fix kept their old size: ``measure_lesions --all`` zeroes
    them and leaves the decision alone; the lesions still on the mask keep their sizes."""
    from django.core.management import call_command

    study = make_study()
    mask = labels_with_boxes(DEFAULT_BOXES)
    erase_1(mask)
    assert put_mask(api(cast.clinician), study.pk, mask, revision=1).status_code == 200
    Lesion.objects.filter(study=study, label=1).update(
        volume_vox=1, volume_mm3=36.0, longest_axial_diameter_mm=0.0, longest_diameter_mm=0.0
    )
    kept = {les.label: les.longest_diameter_mm for les in Lesion.objects.filter(study=study)}
    call_command("measure_lesions", "--all", stdout=io.StringIO())
    rows = {les.label: les for les in Lesion.objects.filter(study=study)}
    one = rows[1]
    assert (one.volume_vox, one.volume_mm3, one.longest_diameter_mm) == (0, 0.0, None)
    assert one.longest_axial_diameter_mm is None and one.decision == "rejected"
    assert {label: rows[label].longest_diameter_mm for label in (2, 3)} == {
        label: kept[label] for label in (2, 3)
    }
    assert rows[2].volume_mm3 == pytest.approx(18 * VOX_MM3)
