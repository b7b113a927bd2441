"""Make an earlier (once active) model version active again, in one step."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lesionloop.core.exceptions import DomainError

from ._version import find_user, find_version


class Command(BaseCommand):
    help = "Roll back to an earlier model version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", help="name (v1) or id")
        parser.add_argument("--reason", default="")
        parser.add_argument("--user", help="admin username recorded in the audit trail")

    def handle(self, *args: Any, **options: Any) -> None:
        from lesionloop.loop.flows import model_version_rollback

        version = find_version(options["version"])
        try:
            version = model_version_rollback(
                version_id=version.pk, user=find_user(options["user"]), reason=options["reason"]
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{version.name} is active again.")
