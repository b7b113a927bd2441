"""Model registry endpoints (docs/API.md, "Models and training"). Writes: admin only."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lesionloop.accounts.permissions import ReadAnyRoleWriteAdmin
from lesionloop.core.exceptions import DomainError
from lesionloop.loop import flows
from lesionloop.registry import selectors
from lesionloop.registry.models import ModelVersion

from .serializers import (
    CurrentGateSetSerializer,
    LineageSerializer,
    ModelVersionSerializer,
    PromoteInputSerializer,
    RollbackInputSerializer,
    validated,
)


def _version(version_id: int) -> ModelVersion:
    try:
        return selectors.model_version_get(version_id=version_id)
    except ModelVersion.DoesNotExist:
        raise DomainError("No such model version.", code="not_found", status_code=404) from None


class ModelVersionListView(generics.ListAPIView):
    permission_classes = [ReadAnyRoleWriteAdmin]
    serializer_class = ModelVersionSerializer

    def get_queryset(self) -> Any:
        return selectors.model_version_list()


class ModelVersionDetailView(generics.RetrieveAPIView):
    permission_classes = [ReadAnyRoleWriteAdmin]
    serializer_class = ModelVersionSerializer
    lookup_url_kwarg = "version_id"

    def get_object(self) -> ModelVersion:
        return _version(self.kwargs["version_id"])


class ModelVersionPromoteView(APIView):
    permission_classes = [ReadAnyRoleWriteAdmin]

    @extend_schema(request=PromoteInputSerializer, responses={200: ModelVersionSerializer})
    def post(self, request: Request, version_id: int) -> Response:
        data = validated(PromoteInputSerializer, request.data)
        _version(version_id)
        version = flows.model_version_promote(
            version_id=version_id,
            user=request.user,
            override_reason=data["override_reason"],
        )
        return Response(
            ModelVersionSerializer(_version(version.pk)).data, status=status.HTTP_200_OK
        )


class ModelVersionRollbackView(APIView):
    permission_classes = [ReadAnyRoleWriteAdmin]

    @extend_schema(request=RollbackInputSerializer, responses={200: ModelVersionSerializer})
    def post(self, request: Request, version_id: int) -> Response:
        data = validated(RollbackInputSerializer, request.data)
        _version(version_id)
        version = flows.model_version_rollback(
            version_id=version_id, user=request.user, reason=data["reason"]
        )
        return Response(ModelVersionSerializer(_version(version.pk)).data)


class ModelVersionLineageView(APIView):
    permission_classes = [ReadAnyRoleWriteAdmin]

    @extend_schema(responses={200: LineageSerializer})
    def get(self, request: Request, version_id: int) -> Response:
        lineage = selectors.model_version_lineage(_version(version_id))
        return Response(LineageSerializer(lineage).data)


class GateSetView(APIView):
    """``GET /api/gate-set/``: ``{"current": <gate set> | null}``, the current gate set
    version (null before the first one is made)."""

    permission_classes = [ReadAnyRoleWriteAdmin]

    @extend_schema(responses={200: CurrentGateSetSerializer})
    def get(self, request: Request) -> Response:
        gate = selectors.gate_set_current()
        return Response(CurrentGateSetSerializer({"current": gate}).data)
