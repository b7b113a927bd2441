from __future__ import annotations

from django.urls import path

from . import views

app_name = "viewer"
urlpatterns = [
    path("", views.worklist, name="worklist"),
    path("studies/<int:study_id>/", views.case_viewer, name="case"),
    path("models/", views.models_page, name="models"),
    path("audit/", views.audit_index, name="audit"),
    path("audit/studies/<int:study_id>/", views.audit_study, name="audit-study"),
    path("audit/models/<int:version_id>/", views.audit_model, name="audit-model"),
]
