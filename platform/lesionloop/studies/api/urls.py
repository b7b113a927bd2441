from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("studies/", views.StudyListView.as_view(), name="study-list"),
    path("studies/<int:pk>/", views.StudyDetailView.as_view(), name="study-detail"),
    path(
        "studies/<int:pk>/volume/<str:channel>/",
        views.VolumeView.as_view(),
        name="study-volume",
    ),
]
