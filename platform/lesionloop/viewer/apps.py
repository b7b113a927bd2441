from __future__ import annotations

from django.apps import AppConfig


class ViewerConfig(AppConfig):
    name = "lesionloop.viewer"
    label = "viewer"
    default_auto_field = "django.db.models.BigAutoField"
