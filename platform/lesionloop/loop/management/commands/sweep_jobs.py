"""``manage.py sweep_jobs``: one sweep by hand (the workers run it every few seconds)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Queue again the jobs and training runs whose worker died (stale heartbeat) or "
        "whose broker message was lost; fail those that used up their attempts."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        from lesionloop.loop.sweeper import sweep

        result = sweep()
        for name, value in vars(result).items():
            self.stdout.write(f"{name}: {value}")
