"""Two saves from the same base revision at the same moment: one wins, one gets 409."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from tests.platform_tests.studies.helpers import labels_with_boxes, make_study, put_mask


@pytest.mark.django_db(transaction=True)
def test_concurrent_saves_serialise_on_the_study_row(api: Any, cast: Any) -> None:
    study = make_study()
    barrier = threading.Barrier(2)
    results: list[int] = []

    def save(box: tuple[int, int, int, int, int, int]) -> None:
        try:
            client = api(cast.clinician)
            barrier.wait()
            results.append(
                put_mask(client, study.pk, labels_with_boxes([box]), revision=1).status_code
            )
        finally:
            connection.close()

    threads = [
        threading.Thread(target=save, args=(b,)) for b in [(0, 0, 0, 1, 1, 1), (1, 1, 1, 2, 2, 2)]
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == [200, 409]
    study.refresh_from_db()
    assert study.revision_number == 2
