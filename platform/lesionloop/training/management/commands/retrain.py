"""Start retraining now and print its progress (stage, epoch, loss, validation DSC)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from lesionloop.core.exceptions import DomainError


class Command(BaseCommand):
    help = (
        "Retrain the ensemble on all approved training-eligible studies. Without a broker "
        "(embedded mode) it trains in this process; with one, a gpu-train worker does."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", help="admin username recorded as who started it")
        parser.add_argument(
            "--hyperparameters",
            default="{}",
            help='JSON overrides, e.g. \'{"unet": {"epochs": 3}}\'',
        )
        parser.add_argument("--no-wait", action="store_true", help="queue it and return")

    def handle(self, *args: Any, **options: Any) -> None:
        from lesionloop.loop.flows import training_run_execute
        from lesionloop.training.progress import follow
        from lesionloop.training.services import training_run_start

        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"no user {options['user']!r}")
        try:
            overrides = json.loads(options["hyperparameters"])
            run = training_run_start(started_by=user, overrides=overrides)
        except (ValueError, DomainError) as exc:
            raise CommandError(getattr(exc, "message", str(exc))) from None
        self.stdout.write(f"Training run {run.pk} queued.")
        if options["no_wait"]:
            return
        run = follow(
            run.pk,
            self.stdout.write,
            inline=settings.EMBEDDED_WORKER,
            execute=training_run_execute,
        )
        if run.status != "succeeded":
            raise CommandError(f"Training run {run.pk} {run.status}: {run.message}")
        version = run.model_version
        self.stdout.write(
            f"{version.name} is {version.status}: "
            + ", ".join(
                f"{k}={version.metrics.get(k)}"
                for k in ("dsc", "small_sensitivity", "large_sensitivity", "fp_per_study")
            )
        )
