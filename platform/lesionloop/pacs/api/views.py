"""DICOM network endpoints (docs/API.md, "DICOM network"): nodes, find, retrieve, send."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lesionloop.accounts.permissions import IsReviewer, ReadAnyRoleWriteAdmin
from lesionloop.core.exceptions import DomainError
from lesionloop.pacs import selectors, services
from lesionloop.pacs.models import RemoteNode
from lesionloop.registry.api.serializers import validated

from .serializers import (
    DicomSendSerializer,
    FindInputSerializer,
    FindResultSerializer,
    RemoteNodeInputSerializer,
    RemoteNodeSerializer,
    RetrieveInputSerializer,
    RetrieveSerializer,
    SendInputSerializer,
)


def _node(node_id: int) -> RemoteNode:
    try:
        return selectors.remote_node_get(node_id=node_id)
    except RemoteNode.DoesNotExist:
        raise DomainError("No such DICOM node.", code="not_found", status_code=404) from None


class RemoteNodeListView(generics.ListAPIView):
    """Any role lists the nodes (to pick one); only admins add one."""

    permission_classes = [ReadAnyRoleWriteAdmin]
    serializer_class = RemoteNodeSerializer
    pagination_class = None

    def get_queryset(self) -> Any:
        return selectors.remote_node_list()

    @extend_schema(request=RemoteNodeInputSerializer, responses={201: RemoteNodeSerializer})
    def post(self, request: Request) -> Response:
        data = validated(RemoteNodeInputSerializer, request.data)
        node = services.remote_node_create(**data, user=request.user)
        return Response(RemoteNodeSerializer(node).data, status=status.HTTP_201_CREATED)


class NodeFindView(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(request=FindInputSerializer, responses={200: FindResultSerializer(many=True)})
    def post(self, request: Request, node_id: int) -> Response:
        data = validated(FindInputSerializer, request.data)
        found = services.pacs_find(node=_node(node_id), **data)
        return Response(found)


class NodeRetrieveView(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(request=RetrieveInputSerializer, responses={202: RetrieveSerializer})
    def post(self, request: Request, node_id: int) -> Response:
        data = validated(RetrieveInputSerializer, request.data)
        retrieve = services.retrieve_create(node=_node(node_id), user=request.user, **data)
        return Response(RetrieveSerializer(retrieve).data, status=status.HTTP_202_ACCEPTED)


class RetrieveDetailView(generics.RetrieveAPIView):
    permission_classes = [IsReviewer]
    serializer_class = RetrieveSerializer

    def get_object(self) -> Any:
        try:
            return selectors.retrieve_get(retrieve_id=self.kwargs["retrieve_id"])
        except Exception:
            raise DomainError("No such retrieve.", code="not_found", status_code=404) from None


class StudySendView(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(request=SendInputSerializer, responses={202: DicomSendSerializer(many=True)})
    def post(self, request: Request, study_id: int) -> Response:
        data = validated(SendInputSerializer, request.data)
        sends = services.dicom_send_create(
            study_id=study_id, node=_node(data["node"]), formats=data["formats"], user=request.user
        )
        return Response(DicomSendSerializer(sends, many=True).data, status=status.HTTP_202_ACCEPTED)


class StudySendListView(generics.ListAPIView):
    permission_classes = [ReadAnyRoleWriteAdmin]
    serializer_class = DicomSendSerializer
    pagination_class = None

    def get_queryset(self) -> Any:
        return selectors.dicom_send_list(study_id=self.kwargs["study_id"])


class StudySendRetryView(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(request=None, responses={202: DicomSendSerializer})
    def post(self, request: Request, study_id: int, send_id: int) -> Response:
        if not selectors.dicom_send_list(study_id=study_id).filter(pk=send_id).exists():
            raise DomainError("No such send.", code="not_found", status_code=404)
        send = services.dicom_send_retry(send_id=send_id, user=request.user)
        return Response(DicomSendSerializer(send).data, status=status.HTTP_202_ACCEPTED)
