"""Run the DICOM listener (C-STORE / C-ECHO SCP) and its completion loop."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from lesionloop.pacs.listener import Listener, listener_config


class Command(BaseCommand):
    help = "Receive studies over DICOM (docs/DICOM.md). Settings: LESIONLOOP_DICOM_*."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--ae-title", help="our AE title (LESIONLOOP_DICOM_AE_TITLE)")
        parser.add_argument("--port", type=int, help="TCP port (LESIONLOOP_DICOM_PORT)")
        parser.add_argument("--bind", help="address to listen on (LESIONLOOP_DICOM_BIND)")
        parser.add_argument(
            "--quiet-seconds",
            type=float,
            help="completion quiet period (LESIONLOOP_DICOM_QUIET_SECONDS)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        config = listener_config(
            ae_title=options["ae_title"], port=options["port"], host=options["bind"]
        )
        listener = Listener(config, quiet_seconds=options["quiet_seconds"]).start()
        self.stdout.write(
            f"listening as {config.ae_title} on {config.host}:{listener.port}; Ctrl-C stops"
        )
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        listener.stop()
