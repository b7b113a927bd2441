"""Export a study's accepted/edited/added lesions: NIfTI labels, DICOM RTSTRUCT or DICOM SEG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lesionloop.core.exceptions import DomainError

FORMATS = ("nifti", "rtstruct", "seg", "report")


class Command(BaseCommand):
    help = (
        "Write a study's contour on the original CT: a NIfTI label mask (default), a DICOM "
        "RT Structure Set or a DICOM Segmentation referencing the planning CT; or the kept "
        "lesions' measurements (volume mm3, longest axial and 3D diameter mm) as CSV (report)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study_id", type=int)
        parser.add_argument("--out", type=Path, help="file or folder (default: current folder)")
        parser.add_argument("--format", choices=FORMATS, default="nifti")

    def handle(self, *args: Any, **options: Any) -> None:
        from lesionloop.review.services import EXPORTERS

        try:
            data, name = EXPORTERS[options["format"]](study_id=options["study_id"], user=None)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        out: Path = options["out"] or Path.cwd()
        path = out / name if out.is_dir() else out
        path.write_bytes(data)
        self.stdout.write(str(path))
