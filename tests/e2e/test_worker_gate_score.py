"""On the real parts: a promotion waits until a real Dramatiq worker (Redis, PostgreSQL)
has scored both versions on the current gate set, then compares those scores.

The web server and the worker run as subprocesses (``loop_env`` of test_worker_loop.py).
Two versions with the same tiny untrained weights are scored on a two-study gate set: the
first promote answers 409 ``not_comparable`` and queues both scoring jobs; once the
worker has done them the candidate (equal, so not worse) is promoted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.test_worker_loop import _token, loop_env  # noqa: F401 - fixture
from tests.e2e.worker_helpers import Api, wait_for

pytestmark = [pytest.mark.e2e]


def _gate_member(storage: Path, study_id: int) -> dict[str, Any]:
    d = storage / "gate" / str(study_id)
    d.mkdir(parents=True)
    rng = np.random.default_rng(study_id)
    np.save(d / "model_input.npy", rng.standard_normal((2, 8, 32, 32)).astype(np.float32))
    gt = np.zeros((8, 32, 32), np.uint8)
    gt[2:4, 5:9, 5:9] = 1
    np.save(d / "ground_truth.npy", gt)
    (d / "study.json").write_text(json.dumps({"grid": {"spacing_mm": [4.0, 3.0, 3.0]}}))
    return {"study_id": study_id, "snapshot_dir": str(d), "stratum": "100-500", "n_lesions": 1}


def test_promotion_waits_for_gate_scores_from_a_real_worker(
    cast: Any,
    loop_env: Any,  # noqa: F811 - the fixture imported above
) -> None:
    from django.utils import timezone

    from lesionloop.registry import services as registry
    from lesionloop.registry.models import GateScore, ModelVersion
    from tests.platform_tests.studies.helpers import tiny_model_dir

    processes, base_api, storage = loop_env
    for name in ("v1", "v2"):
        (storage / "models" / name).mkdir(parents=True)
        tiny_model_dir(storage / "models" / name)
    v1 = ModelVersion.objects.create(
        name="v1",
        status="active",
        preset="lite",
        weights_dir="models/v1",
        promoted_at=timezone.now(),
    )
    v2 = ModelVersion.objects.create(
        name="v2", status="candidate", preset="lite", weights_dir="models/v2", parent=v1
    )
    registry.gate_set_version_grow(new_members=[_gate_member(storage, 1), _gate_member(storage, 2)])
    api = Api(base_api, _token(cast.admin))

    def web_up() -> bool:
        try:
            api.get("/gate-set/")
            return True
        except OSError:
            return False

    wait_for("the web server", web_up, timeout_s=90, processes=processes)
    status, body, _ = api.request("POST", f"/models/{v2.pk}/promote/", json_body={}, expect=409)
    assert body["code"] == "not_comparable" and sorted(body["comparison"]["missing"]) == [
        "v1",
        "v2",
    ]

    def both_scored() -> bool:
        rows = list(GateScore.objects.values_list("model_version__name", "status", "message"))
        assert not [r for r in rows if r[1] == "failed"], rows
        return len(rows) == 2 and all(r[1] == "done" for r in rows)

    wait_for("the worker to score both versions", both_scored, timeout_s=240, processes=processes)
    scores = {
        s.model_version.name: s.metrics for s in GateScore.objects.select_related("model_version")
    }
    assert scores["v1"]["n_studies"] == 2 and scores["v1"]["n_lesions"] == 2
    assert scores["v1"]["dsc"] == scores["v2"]["dsc"]  # same weights, same studies
    promoted = api.post(f"/models/{v2.pk}/promote/")
    assert promoted["status"] == "active" and promoted["gate"]["comparable"] is True
    assert promoted["gate"]["gate_set"] == 1
