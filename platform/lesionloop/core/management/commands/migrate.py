"""Django's ``migrate``, run as the owner role when ``DATABASE_OWNER_URL`` is set.

The application's own role (``DATABASE_URL``) cannot create or alter tables, nor
touch the audit trail's triggers; only migrations need the owner (docs/SECURITY.md).
Without ``DATABASE_OWNER_URL`` (the embedded SQLite mode) this is plain ``migrate``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands import migrate

from lesionloop.core.dbowner import owner_connection


class Command(migrate.Command):
    help = (
        "Updates the database schema, as the owner role when DATABASE_OWNER_URL is set "
        "(docs/SECURITY.md)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with owner_connection(options["database"]) as as_owner:
            if as_owner and options["verbosity"] >= 1:
                self.stdout.write("Migrating as the owner role (DATABASE_OWNER_URL).")
            super().handle(*args, **options)
