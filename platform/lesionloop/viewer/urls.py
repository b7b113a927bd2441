from __future__ import annotations

from django.urls import path

from . import views

app_name = "viewer"
urlpatterns = [path("", views.worklist, name="worklist")]
