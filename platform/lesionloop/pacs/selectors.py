"""Reads of the DICOM network."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import DicomSend, ReceivedStudy, RemoteNode, Retrieve


def remote_node_list() -> QuerySet[RemoteNode]:
    return RemoteNode.objects.all()


def remote_node_get(*, node_id: int | None = None, name: str | None = None) -> RemoteNode:
    """``RemoteNode.DoesNotExist`` when there is none."""
    if name is not None:
        return RemoteNode.objects.get(name=name)
    return RemoteNode.objects.get(pk=node_id)


def dicom_send_list(*, study_id: int) -> QuerySet[DicomSend]:
    return DicomSend.objects.filter(study_id=study_id).select_related("node").order_by("-id")


def retrieve_get(*, retrieve_id: int) -> Retrieve:
    return Retrieve.objects.select_related("node").get(pk=retrieve_id)


def received_study_list() -> QuerySet[ReceivedStudy]:
    return ReceivedStudy.objects.all()
