"""Fetch studies from a PACS: C-FIND by patient ID or accession, C-MOVE to our listener."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from lesionloop.core.exceptions import DomainError
from lesionloop.pacs import selectors, services
from lesionloop.pacs.models import RemoteNode


class Command(BaseCommand):
    help = "Queue a fetch from a PACS node (the listener must be running to receive it)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--node", required=True, help="RemoteNode name")
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--patient-id")
        group.add_argument("--accession")
        parser.add_argument(
            "--now", action="store_true", help="run the retrieve here instead of queueing it"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            node = selectors.remote_node_get(name=options["node"])
        except RemoteNode.DoesNotExist:
            raise CommandError(f"no node named {options['node']!r}") from None
        try:
            retrieve = services.retrieve_create(
                node=node,
                patient_id=options["patient_id"] or "",
                accession_number=options["accession"] or "",
            )
            if options["now"]:
                retrieve = services.retrieve_execute(retrieve_id=retrieve.pk) or retrieve
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"retrieve {retrieve.pk}: {retrieve.status} {retrieve.studies}")
