"""Send an approved study's contours (RTSTRUCT and SEG) to a DICOM node."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from lesionloop.core.exceptions import DomainError
from lesionloop.pacs import selectors, services
from lesionloop.pacs.models import RemoteNode


class Command(BaseCommand):
    help = "Queue (or with --now, run) C-STORE of a study's approved contours to a node."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("study_id", type=int)
        parser.add_argument("--node", required=True, help="RemoteNode name")
        parser.add_argument("--formats", default="rtstruct,seg", help="comma list")
        parser.add_argument("--now", action="store_true", help="send here, one attempt each")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            node = selectors.remote_node_get(name=options["node"])
        except RemoteNode.DoesNotExist:
            raise CommandError(f"no node named {options['node']!r}") from None
        formats = [f.strip() for f in options["formats"].split(",") if f.strip()]
        try:
            sends = services.dicom_send_create(
                study_id=options["study_id"], node=node, formats=formats
            )
            for send in sends:
                if options["now"]:
                    try:
                        send = services.dicom_send_execute(send_id=send.pk) or send
                    except services.SendRetryable as exc:
                        self.stderr.write(str(exc))
                        send.refresh_from_db()
                self.stdout.write(f"send {send.pk} {send.format}: {send.status} {send.error}")
        except DomainError as exc:
            raise CommandError(exc.message) from None
