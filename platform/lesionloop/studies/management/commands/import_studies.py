"""Import a folder of studies, with or without ground truth, synchronously.

Each sub-folder (or zip) of FOLDER is one study: DICOM files anywhere below it (or a
``dicom/`` folder), and optionally ``ground_truth_ct.nii.gz`` / ``ground_truth.nii.gz``
(a lesion mask on the CT grid). With ground truth a study becomes an approved training
case; without, it waits for (or gets) pre-segmentation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

GT_NAMES = ("ground_truth_ct.nii.gz", "ground_truth.nii.gz")


class Command(BaseCommand):
    help = "Import a folder of studies (each a sub-folder or zip; optional ground truth)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", type=Path)
        parser.add_argument("--user", help="username recorded as importer/approver")
        parser.add_argument("--no-ground-truth", action="store_true", help="ignore GT files")
        parser.add_argument(
            "--not-training-eligible",
            action="store_true",
            help="approved GT cases stay out of training",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from lesionloop.loop.flows import study_import
        from ml.imaging.errors import IngestError

        folder: Path = options["folder"]
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"no user {options['user']!r}")
        entries = sorted(p for p in folder.iterdir() if p.is_dir() or p.suffix == ".zip")
        if not entries:
            raise CommandError(f"{folder} holds no study folders or zips")
        failed = 0
        for entry in entries:
            source = entry / "dicom" if (entry / "dicom").is_dir() else entry
            gt = None
            if entry.is_dir() and not options["no_ground_truth"]:
                gt = next((entry / n for n in GT_NAMES if (entry / n).exists()), None)
            try:
                study = study_import(
                    source=source,
                    ground_truth=gt,
                    approved_by=user,
                    training_eligible=not options["not_training_eligible"],
                    description=entry.name,
                )
            except IngestError as exc:
                failed += 1
                self.stderr.write(f"{entry.name}: refused: {exc}")
                continue
            self.stdout.write(f"{entry.name}: study {study.pk} {study.status}")
        if failed:
            raise CommandError(f"{failed} of {len(entries)} studies were refused")
