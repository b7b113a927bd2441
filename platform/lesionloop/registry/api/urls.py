"""Routes of the model registry, and (through one include) of training runs."""

from __future__ import annotations

from django.urls import include, path

from . import views

urlpatterns = [
    path("models/", views.ModelVersionListView.as_view(), name="model-list"),
    path("models/<int:version_id>/", views.ModelVersionDetailView.as_view(), name="model-detail"),
    path(
        "models/<int:version_id>/promote/",
        views.ModelVersionPromoteView.as_view(),
        name="model-promote",
    ),
    path(
        "models/<int:version_id>/rollback/",
        views.ModelVersionRollbackView.as_view(),
        name="model-rollback",
    ),
    path(
        "models/<int:version_id>/lineage/",
        views.ModelVersionLineageView.as_view(),
        name="model-lineage",
    ),
    path("gate-set/", views.GateSetView.as_view(), name="gate-set"),
    path("", include("lesionloop.training.api.urls")),
]
