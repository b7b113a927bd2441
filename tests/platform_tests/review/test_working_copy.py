"""The working copy of the current revision: its nonzero voxels (a cache beside the gzip
record). A save writes it, the next save diffs against it, and a copy that is missing,
torn or stale is never trusted: the gzip revision is read instead."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lesionloop.review.services import current_mask
from lesionloop.studies import storage
from lesionloop.studies.models import Study
from tests.platform_tests.studies.helpers import SHAPE, labels_with_boxes, make_study, put_mask

pytestmark = pytest.mark.django_db
BOXES = [(2, 4, 4, 3, 5, 5), (2, 10, 10, 4, 13, 13), (4, 20, 20, 7, 26, 26)]


def _revisions(study_id: int) -> Path:
    return storage.study_dir(study_id) / "revisions"


def _save(api: Any, user: Any, study_id: int, mask: np.ndarray, revision: int) -> dict:
    response = put_mask(api(user), study_id, mask, revision=revision)
    assert response.status_code == 200, response.content
    return {row["label"]: row for row in response.json()["lesions"]}


def test_a_save_keeps_only_its_own_small_working_copy(api: Any, cast: Any) -> None:
    study = make_study()
    mask = labels_with_boxes(BOXES)
    mask[0, 30:32, 30:32] = 9
    _save(api, cast.clinician, study.pk, mask, revision=1)
    mask[0, 0, 0] = 4
    _save(api, cast.clinician, study.pk, mask, revision=2)
    copies = sorted(p.name for p in _revisions(study.pk).glob("working-*"))
    assert copies == ["working-3.vox"]
    # boxes of 1, 18 and 108 voxels, then 4 + 1 drawn: 132 labelled voxels of 8192;
    # the copy is the revision's sha256 (32 bytes), a count (8) and 10 bytes per voxel
    n_voxels = int(np.count_nonzero(mask))
    assert n_voxels == 132
    assert (_revisions(study.pk) / "working-3.vox").stat().st_size == 32 + 8 + 10 * n_voxels
    assert np.array_equal(current_mask(Study.objects.get(pk=study.pk)), mask)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-3])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x07" * path.stat().st_size)


def _remove(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize("damage", [_truncate, _garbage, _remove])
def test_a_damaged_working_copy_falls_back_to_the_revision(
    api: Any, cast: Any, damage: Callable[[Path], None]
) -> None:
    study = make_study()
    saved = labels_with_boxes(BOXES)
    saved[saved == 1] = 0  # lesion 1 erased in revision 2
    _save(api, cast.clinician, study.pk, saved, revision=1)
    damage(_revisions(study.pk) / "working-2.vox")
    assert np.array_equal(current_mask(Study.objects.get(pk=study.pk)), saved)
    # the next save diffs against revision 2 (not against an empty or garbled mask):
    # only lesion 3 changes, lesion 2 stays pending, lesion 1 stays rejected
    edited = saved.copy()
    edited[7, 0:2, 0:2] = 3
    rows = _save(api, cast.clinician, study.pk, edited, revision=2)
    assert {label: row["decision"] for label, row in rows.items()} == {
        1: "rejected",
        2: "pending",
        3: "edited",
    }
    assert np.array_equal(current_mask(Study.objects.get(pk=study.pk)), edited)


def test_a_copy_left_by_a_rolled_back_save_is_not_read(api: Any, cast: Any) -> None:
    from django.db import transaction

    from lesionloop.review.services import mask_revision_create
    from lesionloop.review.services.revisions import _working_copy_write
    from ml.lesions.voxels import nonzero_voxels

    study = make_study()
    second = labels_with_boxes(BOXES)
    second[0, 0, 0] = 5
    _save(api, cast.clinician, study.pk, second, revision=1)
    # a save of revision 3 wrote its copy, then rolled back: the copy stays on disk
    ghost = np.zeros(SHAPE, dtype=np.uint16)
    ghost[1, 1, 1] = 7
    _working_copy_write(study, 3, "ab" * 32, nonzero_voxels(ghost))
    # revision 3 is then written by something that keeps no copy (as the model's does)
    third = second.copy()
    third[0, 0, 0] = 0
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        mask_revision_create(study=locked, data_gz=storage.gzip_array(third, dtype="uint16"))
    assert (_revisions(study.pk) / "working-3.vox").exists()
    assert np.array_equal(current_mask(Study.objects.get(pk=study.pk)), third)
