"""Promote a candidate model version to active (same rule as the API)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lesionloop.core.exceptions import DomainError

from ._version import find_user, find_version


class Command(BaseCommand):
    help = "Make a candidate active if it is not worse than the active version, or with --override-reason."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", help="name (v3) or id")
        parser.add_argument(
            "--override-reason", default="", help="needed when the candidate is worse"
        )
        parser.add_argument("--user", help="admin username recorded in the audit trail")

    def handle(self, *args: Any, **options: Any) -> None:
        from lesionloop.loop.flows import model_version_promote

        version = find_version(options["version"])
        try:
            version = model_version_promote(
                version_id=version.pk,
                user=find_user(options["user"]),
                override_reason=options["override_reason"],
            )
        except DomainError as exc:
            extra = f"\n{json.dumps(exc.extra, indent=2)}" if exc.extra else ""
            raise CommandError(f"{exc.message}{extra}") from None
        self.stdout.write(f"{version.name} is now active.")
