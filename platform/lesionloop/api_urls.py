"""One central API router; each app contributes its routes from ``<app>/api/urls.py``.

Mounted under ``/api/`` by ``lesionloop.urls``. Add an app by appending one include.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

urlpatterns: list[URLPattern | URLResolver] = [
    # studies, review, audit (platform A)
    path("", include("lesionloop.studies.api.urls")),
    path("", include("lesionloop.review.api.urls")),
    path("", include("lesionloop.audit.api.urls")),
    # models and training runs (platform B)
    path("", include("lesionloop.registry.api.urls")),
    # the DICOM network
    path("", include("lesionloop.pacs.api.urls")),
]
