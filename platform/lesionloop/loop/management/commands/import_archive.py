"""``python manage.py import_archive FOLDER``: a site's SRS archive becomes its first
training set.

Each entry of FOLDER (a sub-folder or a zip) is one study: the planning CT, the contrast
T1 MR and the RT Structure Set its planning system made. The structure set's ROIs whose
names match ``LESIONLOOP_GTV_PATTERN`` (default: names starting with "GTV") become the
study's approved, training-eligible ground truth; the others (PTV, organs at risk) are
listed as ignored in the study's report. An entry without a matching ROI is imported
for review; one that cannot be imported (for example a structure set drawn on another
CT: ``rtstruct_frame_mismatch`` / ``rtstruct_series_mismatch``) is reported with its
code and the import goes on. A progress line per study (elapsed and remaining time) and
a summary at the end. Retraining may start afterwards, as after any approvals.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


def archive_entries(folder: Path) -> list[Path]:
    """The studies of an archive folder: its sub-folders and zip files, sorted."""
    return sorted(
        p
        for p in folder.iterdir()
        if not p.name.startswith(".") and (p.is_dir() or p.suffix.lower() == ".zip")
    )


def _eta(done: int, total: int, elapsed: float) -> str:
    left = elapsed / done * (total - done) if done else 0.0
    return f"{elapsed:.0f} s elapsed, about {left:.0f} s left"


class Command(BaseCommand):
    help = "Import an SRS archive folder (one study per sub-folder or zip) as training cases."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", type=Path)
        parser.add_argument(
            "--not-eligible",
            action="store_true",
            help="import the ground truth without using it for retraining",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        folder: Path = options["folder"]
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder.")
        entries = archive_entries(folder)
        if not entries:
            raise CommandError(f"{folder} holds no study (sub-folder or zip).")
        outcomes: Counter[str] = Counter()
        started = time.monotonic()
        for i, entry in enumerate(entries, start=1):
            outcome, line = self._import_one(entry, eligible=not options["not_eligible"])
            outcomes[outcome] += 1
            elapsed = time.monotonic() - started
            self.stdout.write(
                f"[{i}/{len(entries)}] {entry.name}: {line} ({_eta(i, len(entries), elapsed)})"
            )
        self.stdout.write(self._summary(outcomes, len(entries), time.monotonic() - started))

    def _import_one(self, entry: Path, *, eligible: bool) -> tuple[str, str]:
        """(outcome, message) of one study: ``truth`` / ``review`` / a refusal code."""
        from lesionloop.loop.flows import study_import
        from ml.imaging.errors import IngestError

        try:
            study = study_import(source=entry, training_eligible=eligible, description=entry.name)
        except IngestError as exc:
            return exc.code, f"refused ({exc.code}): {exc.message}"
        truth = (study.report or {}).get("ground_truth") or {}
        ignored = ", ".join(row.get("roi", "?") for row in truth.get("ignored", []))
        if study.status == study.Status.APPROVED:
            included = ", ".join(truth.get("included", [])) or "ground truth"
            return "truth", (
                f"study {study.pk} approved with {study.lesions.count()} lesion(s) from "
                f"{included}" + (f"; ignored {ignored}" if ignored else "")
            )
        return "review", f"study {study.pk} imported for review (no lesion ROI matched)" + (
            f"; ignored {ignored}" if ignored else ""
        )

    @staticmethod
    def _summary(outcomes: Counter[str], total: int, seconds: float) -> str:
        refused = {k: v for k, v in outcomes.items() if k not in ("truth", "review")}
        text = (
            f"{total} stud{'y' if total == 1 else 'ies'} in {seconds:.0f} s: "
            f"{outcomes['truth']} approved training case(s), {outcomes['review']} for review, "
            f"{sum(refused.values())} refused"
        )
        if refused:
            text += " (" + ", ".join(f"{code}: {n}" for code, n in sorted(refused.items())) + ")"
        return text
