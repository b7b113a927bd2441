"""Fill in the longest diameters of lesions saved before measurements existed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lesionloop.core.exceptions import DomainError


class Command(BaseCommand):
    help = (
        "Measure lesions (longest axial and 3D diameter, mm) on each study's current mask: "
        "rows with no diameters yet, or every row with --all. Safe to rerun."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--study", type=int, help="only this study id")
        parser.add_argument("--all", action="store_true", help="re-measure measured rows too")

    def handle(self, *args: Any, **options: Any) -> None:
        from lesionloop.review.services import studies_lesions_measure, study_lesions_measure

        only_missing = not options["all"]
        if options["study"] is not None:
            try:
                n = study_lesions_measure(study_id=options["study"], only_missing=only_missing)
            except DomainError as exc:
                raise CommandError(exc.message) from None
            self.stdout.write(f"study {options['study']}: {n} lesions measured")
            return
        studies, lesions = studies_lesions_measure(only_missing=only_missing)
        self.stdout.write(f"{lesions} lesions measured in {studies} studies")
