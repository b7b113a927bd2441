from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from lesionloop.core.embedded import start_embedded_worker, stop_embedded_worker


class Command(BaseCommand):
    help = (
        "Serve LesionLoop. Without DRAMATIQ_BROKER_URL an in-process worker runs the "
        "ingest, pre-segmentation and training queues too (embedded mode)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.EMBEDDED_WORKER:
            start_embedded_worker()
            self.stdout.write("Embedded worker running (queues: default, gpu-infer, gpu-train).")
        else:
            self.stdout.write(
                f"Using broker {settings.DRAMATIQ_BROKER_URL}; start workers with scripts/worker.sh."
            )
        try:
            call_command("runserver", options["addrport"], use_reloader=False)
        finally:
            stop_embedded_worker()
