"""An admin starts a retraining in the browser and watches a real worker train.

The web server and a Dramatiq worker run as subprocesses against Redis and the
PostgreSQL test database (the ``loop_env`` fixture of test_worker_loop.py);
Debian's chromium drives the models page. Nothing here writes progress for the
worker: the stage, the percentage and the new version come from real training.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser_helpers import VIEWPORT, shot
from tests.e2e.test_worker_loop import _generate, loop_env  # noqa: F401 - fixture
from tests.e2e.worker_helpers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_admin_starts_retraining_in_the_browser_and_a_real_worker_trains(
    cast: Any,
    loop_env: Any,  # noqa: F811 - the fixture imported above
    browser_chromium: Any,
    tmp_path: Path,
) -> None:
    from lesionloop.review.services import study_ground_truth_apply
    from lesionloop.studies.services import study_import
    from lesionloop.training.models import TrainingRun

    processes, base_api, _storage = loop_env
    base = base_api.removesuffix("/api")
    for seed in (31, 32, 33):
        folder = _generate(tmp_path / "sources", seed)
        study_import(
            source=folder / "dicom",
            ground_truth=folder / "ground_truth_ct.nii.gz",
            approved_by=cast.admin,
            ground_truth_apply=study_ground_truth_apply,
            description=f"ground truth {seed}",
        )

    context = browser_chromium.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        def login() -> bool:
            try:
                page.goto(f"{base}/accounts/login/?next=/models/", timeout=5000)
                return True
            except Exception:  # noqa: BLE001 - the server is still starting
                return False

        wait_for("the web server", login, timeout_s=60, processes=processes)
        page.fill("input[name=username]", "ada")
        page.fill("input[name=password]", "ada-pass-1")
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/models/*")
        page.wait_for_selector("#run-body >> text=No retraining has run yet")

        t0 = time.monotonic()
        page.click("#start-training")
        # Live progress from the worker's subprocess: a network stage appears...
        page.wait_for_function(
            "['unet', 'deepmedic', 'validate'].includes("
            "(document.getElementById('run-stage') || {}).textContent)",
            timeout=180_000,
        )
        shot(page, "models-training-real-worker")
        stage_seen = page.inner_text("#run-stage")
        # ... and when the run ends, the page lists the version it produced, active (the
        # table also refreshes while the run is going, so any row is not enough).
        page.wait_for_selector("#versions tbody tr.active-version[data-id]", timeout=240_000)
        elapsed = time.monotonic() - t0
    finally:
        context.close()

    run = TrainingRun.objects.get()
    assert run.started_by == cast.admin
    assert run.status == "succeeded", run.message
    assert {loss["stage"] for loss in run.losses} == {"unet", "deepmedic"}
    assert run.model_version is not None and run.model_version.status == "active"
    assert stage_seen in {"unet", "deepmedic", "validate"}
    assert not errors, errors
    print(f"browser-started training finished in {elapsed:.1f} s")
