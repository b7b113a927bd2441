from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "lesionloop.core"
    label = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .logscrub import install

        install()  # no patient names or IDs in any log of this process
