"""Export a study's accepted/edited/added lesions as NIfTI labels on the planning CT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lesionloop.core.api import DomainError


class Command(BaseCommand):
    help = "Write a study's contour as a NIfTI label mask on the original CT grid."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study_id", type=int)
        parser.add_argument("--out", type=Path, help="file or folder (default: current folder)")

    def handle(self, *args: Any, **options: Any) -> None:
        from lesionloop.review.services import study_export_nifti

        try:
            data, name = study_export_nifti(study_id=options["study_id"], user=None)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        out: Path = options["out"] or Path.cwd()
        path = out / name if out.is_dir() else out
        path.write_bytes(data)
        self.stdout.write(str(path))
