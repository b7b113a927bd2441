"""Demo data for a cold start: synthetic training cases, studies to review, a first training.

Idempotent and quick once done: every study is looked up by its description
before anything is generated, and a training run starts only while no model
version exists and none is queued or running.

It lives in ``loop`` because it runs the whole loop: ingest (``loop.flows.study_import``),
a first training (``training``) and, when it finishes, the first model's promotion.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from lesionloop.studies.models import Study

TRAIN_SEEDS = (101, 102, 103, 104)
REVIEW_SEEDS = (201, 202)
# A short first training on CPU: it stops at this budget with its best weights so far.
DEMO_OVERRIDES = {"max_minutes": 8.0}


class Command(BaseCommand):
    help = (
        "Generate and import a few synthetic studies (approved training cases with ground "
        "truth, and studies to review), then start a first training run. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--train", type=int, default=len(TRAIN_SEEDS), help="training cases")
        parser.add_argument(
            "--review", type=int, default=len(REVIEW_SEEDS), help="studies to review"
        )
        parser.add_argument(
            "--no-training", action="store_true", help="do not start a training run"
        )
        parser.add_argument("--wait", action="store_true", help="train here and print progress")

    def handle(self, *args: Any, **options: Any) -> None:
        from lesionloop.registry.models import ModelVersion
        from lesionloop.studies.models import Study
        from lesionloop.training.models import TrainingRun
        from lesionloop.training.selectors import training_run_open

        t0 = time.monotonic()
        grid = settings.LESIONLOOP_GRID
        admin = self._admin()
        train_seeds = [TRAIN_SEEDS[0] + i for i in range(options["train"])]
        review_seeds = [REVIEW_SEEDS[0] + i for i in range(options["review"])]
        made = 0
        for seed in train_seeds:
            made += self._ensure(Study, grid, seed, admin, with_truth=True)
        for seed in review_seeds:
            made += self._ensure(Study, grid, seed, admin, with_truth=False)
        started = None
        from lesionloop.training.services import training_run_start, training_runs_fail_orphans

        training_runs_fail_orphans()
        if (
            not options["no_training"]
            # Nothing usable yet (a failed first attempt is tried again).
            and not ModelVersion.objects.exclude(status=ModelVersion.Status.FAILED).exists()
            and training_run_open() is None
        ):
            started = training_run_start(
                started_by=admin, trigger=TrainingRun.Trigger.DEMO, overrides=DEMO_OVERRIDES
            )
        self.stdout.write(
            f"Demo data ({grid} grid): {made} studies imported now, "
            f"{len(train_seeds)} training cases and {len(review_seeds)} to review in all "
            f"({time.monotonic() - t0:.1f} s)."
        )
        if started is not None:
            self.stdout.write(
                f"Training run {started.pk} queued: the first model version appears when it "
                "finishes (follow it at /models/ or GET /api/training-runs/)."
            )
            if options["wait"]:
                from lesionloop.loop.flows import training_run_execute
                from lesionloop.training.progress import follow

                follow(
                    started.pk,
                    self.stdout.write,
                    inline=settings.EMBEDDED_WORKER,
                    execute=training_run_execute,
                )

    def _admin(self) -> User | None:
        """The user the demo acts as: ``admin``, else the first admin or superuser."""
        users = get_user_model().objects
        return (
            users.filter(username="admin").first()
            or users.filter(groups__name="admin").order_by("pk").first()
            or users.filter(is_superuser=True).order_by("pk").first()
        )

    def _ensure(
        self,
        study_model: type[Study],
        grid: str,
        seed: int,
        admin: User | None,
        *,
        with_truth: bool,
    ) -> int:
        """Import the demo study of ``seed`` unless it is there already; 1 when imported."""
        from lesionloop.loop.flows import study_import

        kind = "training case" if with_truth else "study to review"
        description = f"demo {kind} (synthetic seed {seed})"
        if study_model.objects.filter(description=description).exists():
            return 0
        source = self._generate(grid, seed)
        t0 = time.monotonic()
        study_import(
            source=source / "dicom",
            ground_truth=(source / "ground_truth_ct.nii.gz") if with_truth else None,
            approved_by=admin if with_truth else None,
            training_eligible=True,
            description=description,
        )
        self.stdout.write(f"  imported {description} in {time.monotonic() - t0:.1f} s")
        return 1

    def _generate(self, grid: str, seed: int) -> Path:
        """The synthetic study of ``seed``, generated once under ``VAR_DIR/demo/<grid>/``."""
        from ml.synthetic import generate_study

        folder = Path(settings.VAR_DIR) / "demo" / grid / f"seed-{seed}"
        if not (folder / "truth.json").exists():
            generate_study(folder, seed=seed, grid=grid)
        return folder
