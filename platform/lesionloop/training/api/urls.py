from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("training-runs/", views.TrainingRunListView.as_view(), name="training-run-list"),
    path(
        "training-runs/estimate/",
        views.TrainingEstimateView.as_view(),
        name="training-run-estimate",
    ),
    path(
        "training-runs/<int:run_id>/",
        views.TrainingRunDetailView.as_view(),
        name="training-run-detail",
    ),
    path(
        "training-runs/<int:run_id>/cancel/",
        views.TrainingRunCancelView.as_view(),
        name="training-run-cancel",
    ),
]
