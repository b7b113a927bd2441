"""One central API router; each app contributes its routes from ``<app>/api/urls.py``."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
urlpatterns.append(__import__("django.urls").urls.path("", __import__("django.urls").urls.include("lesionloop.registry.api.urls")))
