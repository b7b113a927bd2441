from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from lesionloop.registry.models import ModelVersion

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def find_version(ref: str) -> ModelVersion:
    """A version by name (``v3``) or id (``3``)."""
    version = ModelVersion.objects.filter(name=ref).first()
    if version is None and ref.isdigit():
        version = ModelVersion.objects.filter(pk=int(ref)).first()
    if version is None:
        raise CommandError(f"no model version {ref!r}")
    return version


def find_user(username: str | None) -> User | None:
    """The user named ``username``; None when no name is given."""
    if not username:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"no user {username!r}")
    return user
