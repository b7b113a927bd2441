from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("studies/<int:pk>/timeline/", views.StudyTimelineView.as_view(), name="study-timeline"),
    path("audit/", views.AuditListView.as_view(), name="audit-list"),
]
