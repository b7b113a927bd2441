"""``manage.py health``: the checks of ``GET /healthz`` from a shell or a container.

Exit status 0 when every selected check passes, 1 otherwise; one line per check.
Workers use ``--checks database,broker,storage`` (docker/compose.yml health checks).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lesionloop.viewer import health


class Command(BaseCommand):
    help = "Run the health checks of GET /healthz; exit 1 when one fails."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checks",
            default="",
            help=f"comma-separated subset of {', '.join(health.health_checks())} (default: all)",
        )
        parser.add_argument("--json", action="store_true", help="print the /healthz body")

    def handle(self, *args: Any, **options: Any) -> None:
        from lesionloop.core.health import health_run

        table = health.health_checks()
        wanted = [name.strip() for name in options["checks"].split(",") if name.strip()]
        unknown = sorted(set(wanted) - set(table))
        if unknown:
            raise CommandError(f"unknown check(s) {unknown}; known: {sorted(table)}")
        ok, results = health_run({name: table[name] for name in wanted or table})
        if options["json"]:
            body = {name: {"ok": r.ok, "detail": r.detail} for name, r in results.items()}
            self.stdout.write(json.dumps({"ok": ok, "checks": body}))
        else:
            for name, r in results.items():
                self.stdout.write(f"{'ok  ' if r.ok else 'FAIL'} {name}: {r.detail}")
        if not ok:
            sys.exit(1)
