from __future__ import annotations

from django.apps import AppConfig


class LoopConfig(AppConfig):
    """The loop: the few flows that chain one app's step to the next app's step."""

    name = "lesionloop.loop"
    label = "loop"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Import the flows (and through them every step they chain) at start-up: a
        # renamed step fails the process loudly instead of silently breaking the loop.
        from . import flows, tasks  # noqa: F401
