"""Routes of the DICOM network."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("pacs/nodes/", views.RemoteNodeListView.as_view(), name="pacs-node-list"),
    path("pacs/nodes/<int:node_id>/find/", views.NodeFindView.as_view(), name="pacs-node-find"),
    path(
        "pacs/nodes/<int:node_id>/retrieve/",
        views.NodeRetrieveView.as_view(),
        name="pacs-node-retrieve",
    ),
    path(
        "pacs/retrieves/<int:retrieve_id>/",
        views.RetrieveDetailView.as_view(),
        name="pacs-retrieve-detail",
    ),
    path("studies/<int:study_id>/send/", views.StudySendView.as_view(), name="study-send"),
    path("studies/<int:study_id>/sends/", views.StudySendListView.as_view(), name="study-sends"),
    path(
        "studies/<int:study_id>/sends/<int:send_id>/retry/",
        views.StudySendRetryView.as_view(),
        name="study-send-retry",
    ),
]
