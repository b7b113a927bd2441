"""The validation split: deterministic, sticky, never empty on either side."""

from __future__ import annotations

from typing import Any

import pytest

from lesionloop.training import selectors, services
from lesionloop.training.models import SplitAssignment


@pytest.mark.parametrize("n", [2, 3, 6, 20])
def test_split_has_both_sides_and_is_disjoint(cast: Any, cases: Any, n: int) -> None:
    records = cases(n)
    train, val = services.split_ensure(records)
    assert train and val
    assert {r.study_id for r in train}.isdisjoint({r.study_id for r in val})
    assert len(train) + len(val) == n


def test_split_is_sticky_as_studies_arrive(cast: Any, cases: Any) -> None:
    first = cases(5)
    _, val1 = services.split_ensure(first)
    more = cases(15, start=100)
    train2, val2 = services.split_ensure(more)
    assert {r.study_id for r in val1} <= {r.study_id for r in val2}
    assert {r.study_id for r in val1}.isdisjoint({r.study_id for r in train2})
    # Beyond the first validation study, membership follows the hash.
    for r in more:
        if r.study_id >= 100:
            expected = "validation" if selectors.split_hash_is_validation(r.key) else "train"
            assert SplitAssignment.objects.get(study_id=r.study_id).split == expected


def test_hash_is_deterministic() -> None:
    keys = [f"1.2.826.0.1.{i}" for i in range(200)]
    picks = [selectors.split_hash_is_validation(k) for k in keys]
    assert picks == [selectors.split_hash_is_validation(k) for k in keys]
    assert 20 <= sum(picks) <= 60  # about one in five
