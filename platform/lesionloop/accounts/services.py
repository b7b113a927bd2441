"""Writes for accounts: users with roles, demo users, API tokens."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from django.contrib.auth.models import Group, User
from django.db import transaction
from rest_framework.authtoken.models import Token

from .roles import ADMIN, AUDITOR, CLINICIAN, ROLES

DEMO_USERS = (("clinician", CLINICIAN), ("admin", ADMIN), ("auditor", AUDITOR))


def roles_ensure() -> None:
    for name in ROLES:
        Group.objects.get_or_create(name=name)


@transaction.atomic
def user_create(*, username: str, password: str, role: str, email: str = "") -> User:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    roles_ensure()
    user, _ = User.objects.get_or_create(username=username, defaults={"email": email})
    user.set_password(password)
    user.is_staff = role == ADMIN  # admins may use the Django admin
    user.save()
    user.groups.set([Group.objects.get(name=role)])
    return user


def demo_users_ensure(*, secrets_file: Path) -> list[tuple[str, str, str]]:
    """Create the three demo users once; their passwords persist in ``secrets_file``."""
    stored: dict[str, str] = {}
    if secrets_file.exists():
        stored = json.loads(secrets_file.read_text())
    rows = []
    for username, role in DEMO_USERS:
        password = stored.get(username) or f"{username}-{secrets.token_urlsafe(6)}"
        if not User.objects.filter(username=username).exists() or username not in stored:
            user_create(username=username, password=password, role=role)
        stored[username] = password
        rows.append((username, role, password))
    secrets_file.parent.mkdir(parents=True, exist_ok=True)
    secrets_file.write_text(json.dumps(stored, indent=2))
    secrets_file.chmod(0o600)
    return rows


def token_for(*, user: User) -> str:
    token, _ = Token.objects.get_or_create(user=user)
    return token.key
