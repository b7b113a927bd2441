from __future__ import annotations

from django.urls import path

from . import rulers, views

urlpatterns = [
    path("review-effort/", views.ReviewEffortView.as_view(), name="review-effort"),
    path("studies/<int:pk>/mask/", views.MaskView.as_view(), name="study-mask"),
    path("studies/<int:pk>/lesions/", views.LesionListView.as_view(), name="study-lesions"),
    path(
        "studies/<int:pk>/lesions/<int:lesion_id>/",
        views.LesionDecisionView.as_view(),
        name="study-lesion",
    ),
    path("studies/<int:pk>/lease/", views.LeaseView.as_view(), name="study-lease"),
    path("studies/<int:pk>/approve/", views.ApproveView.as_view(), name="study-approve"),
    path("studies/<int:pk>/reopen/", views.ReopenView.as_view(), name="study-reopen"),
    path("studies/<int:pk>/export/nifti", views.ExportNiftiView.as_view(), name="study-export"),
    path(
        "studies/<int:pk>/export/rtstruct",
        views.ExportRtstructView.as_view(),
        name="study-export-rtstruct",
    ),
    path("studies/<int:pk>/export/seg", views.ExportSegView.as_view(), name="study-export-seg"),
    path(
        "studies/<int:pk>/export/report",
        views.ExportReportView.as_view(),
        name="study-export-report",
    ),
    path("studies/<int:pk>/rulers/", rulers.RulerListView.as_view(), name="study-rulers"),
    path(
        "studies/<int:pk>/rulers/<int:ruler_id>/",
        rulers.RulerView.as_view(),
        name="study-ruler",
    ),
    path(
        "studies/<int:pk>/propose-lesion/",
        views.LesionProposalView.as_view(),
        name="study-propose-lesion",
    ),
]
