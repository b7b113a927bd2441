from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from lesionloop.accounts.services import demo_users_ensure


class Command(BaseCommand):
    help = "Create (once) a clinician, an admin and an auditor for the demo; print their passwords."

    def handle(self, *args: Any, **options: Any) -> None:
        rows = demo_users_ensure(secrets_file=settings.VAR_DIR / "demo_users.json")
        port = os.environ.get("PORT", "8000")  # scripts/run.sh serves on $PORT
        self.stdout.write(f"Demo users (log in at http://127.0.0.1:{port}/accounts/login/):")
        for username, role, password in rows:
            self.stdout.write(f"  {role:<10} user={username:<10} password={password}")
