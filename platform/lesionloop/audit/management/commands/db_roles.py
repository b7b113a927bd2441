"""Print (default) or apply the SQL that confines the application's database role.

    python manage.py db_roles --app-role lesionloop_app --owner-role lesionloop
    python manage.py db_roles --app-role lesionloop_app --owner-role lesionloop --apply \\
        --password-env LESIONLOOP_APP_DB_PASSWORD

``--apply`` runs the statements in one transaction over the owner connection
(``DATABASE_OWNER_URL``, else ``DATABASE_URL``); creating a role needs a superuser or
CREATEROLE, so it is often easier to pipe the printed SQL into ``psql`` as ``postgres``.
``--grants-only`` leaves the role itself alone (a superuser made it, as compose's
``docker/postgres/init-roles.sh`` does): it checks that the role is confined (not a
superuser, no CREATEROLE/CREATEDB/REPLICATION/BYPASSRLS, not a member of the owner) and
refuses otherwise, then grants; a non-superuser owner without CREATEROLE can run it.
docs/SECURITY.md explains the two roles.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connection, transaction

from lesionloop.audit.roles import app_role_problems, app_role_sql
from lesionloop.core.dbowner import owner_connection


class Command(BaseCommand):
    help = "Print or apply the SQL for the confined application role (docs/SECURITY.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--app-role", default="lesionloop_app")
        parser.add_argument("--owner-role", default="", help="default: the tables' owner")
        parser.add_argument("--database", default="", help="default: the configured one")
        parser.add_argument("--apply", action="store_true", help="run it instead of printing")
        parser.add_argument(
            "--password-env",
            default="",
            help="with --apply: set the app role's password from this environment variable",
        )
        parser.add_argument(
            "--grants-only",
            action="store_true",
            help="check the existing role, grant its privileges; create or alter no role",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("Database roles need PostgreSQL (the embedded SQLite has none).")
        with owner_connection():
            owner = options["owner_role"] or self._table_owner()
            database = options["database"] or connection.settings_dict["NAME"]
            try:
                statements = app_role_sql(
                    app_role=options["app_role"],
                    owner_role=owner,
                    database=database,
                    grants_only=options["grants_only"],
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            if not options["apply"]:
                self.stdout.write(
                    "-- run as a superuser after the first migrate; set the password with "
                    f"\\password {options['app_role']}"
                )
                self.stdout.write(";\n".join(statements) + ";")
                return
            if options["grants_only"]:
                self._check_confined(options["app_role"], owner)
            self._apply(statements, options)

    def _check_confined(self, app_role: str, owner: str) -> None:
        with connection.cursor() as cursor:
            problems = app_role_problems(cursor, app_role=app_role, owner_role=owner)
        if problems:
            raise CommandError("Refusing to grant: " + "; ".join(problems) + " (docs/SECURITY.md).")

    def _table_owner(self) -> str:
        from lesionloop.audit.roles import audit_table

        with connection.cursor() as cursor:
            cursor.execute("SELECT tableowner FROM pg_tables WHERE tablename = %s", [audit_table()])
            row = cursor.fetchone()
        if row is None:
            raise CommandError("The audit table does not exist yet: run migrate first.")
        return row[0]

    def _apply(self, statements: list[str], options: dict[str, Any]) -> None:
        password = os.environ.get(options["password_env"], "") if options["password_env"] else ""
        if options["password_env"] and not password:
            raise CommandError(f"{options['password_env']} is empty or not set.")
        if password and options["grants_only"]:
            raise CommandError("--grants-only alters no role: set the password as a superuser.")
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
                if password:
                    # the role name was checked by app_role_sql; the password is a parameter
                    cursor.execute(f'ALTER ROLE "{options["app_role"]}" PASSWORD %s', [password])
        except DatabaseError as exc:
            raise CommandError(f"Could not apply the roles: {exc}") from None
        self.stdout.write(f"Role {options['app_role']} confined ({len(statements)} statements).")
