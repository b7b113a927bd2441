from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lesionloop.accounts.roles import ROLES
from lesionloop.accounts.services import token_for, user_create


class Command(BaseCommand):
    help = "Create or update a user with one role; optionally print an API token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--password", help="omit to be asked")
        parser.add_argument("--token", action="store_true", help="print an API token for scripts")

    def handle(self, *args: Any, **options: Any) -> None:
        password = options["password"] or getpass.getpass("Password: ")
        if len(password) < 8:
            raise CommandError("The password must have at least 8 characters.")
        user = user_create(username=options["username"], password=password, role=options["role"])
        self.stdout.write(f"{user.username}: role {options['role']}")
        if options["token"]:
            self.stdout.write(f"token: {token_for(user=user)}")
