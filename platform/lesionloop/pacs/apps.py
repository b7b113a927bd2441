from __future__ import annotations

from django.apps import AppConfig


class PacsConfig(AppConfig):
    """The hospital's DICOM network: receive studies, fetch from a PACS, send contours."""

    name = "lesionloop.pacs"
    label = "pacs"
    default_auto_field = "django.db.models.BigAutoField"
