"""The audit trail over HTTP: a study's timeline and the filterable trail."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lesionloop.accounts.permissions import HasRole, IsAuditorOrAdmin
from lesionloop.core.api import parse_id, query_text
from lesionloop.core.exceptions import DomainError
from lesionloop.studies.api.pagination import WorklistPagination
from lesionloop.studies.selectors import study_get

from .. import selectors
from .serializers import AuditEventSerializer


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    return parse_id(raw, name=name, code="bad_filter")


def _ordering(request: Request) -> str:
    value = request.query_params.get("ordering") or "created_at"
    if value not in ("created_at", "-created_at"):
        raise DomainError("ordering must be created_at or -created_at.", code="bad_filter")
    return value


class StudyTimelineView(APIView):
    permission_classes = [HasRole]

    @extend_schema(operation_id="studies_timeline", responses=AuditEventSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        study_get(study_id=pk)
        events = selectors.study_timeline(study_id=pk)
        return Response(AuditEventSerializer(events, many=True).data)


@extend_schema_view(
    get=extend_schema(
        operation_id="audit_list",
        parameters=[
            OpenApiParameter("study", int),
            OpenApiParameter("model_version", int),
            OpenApiParameter("event_type", str),
            OpenApiParameter("actor", str, description="Username (or user id)."),
            OpenApiParameter(
                "ordering",
                str,
                enum=["created_at", "-created_at"],
                description="Oldest first by default.",
            ),
        ],
    )
)
class AuditListView(generics.ListAPIView):
    permission_classes = [IsAuditorOrAdmin]
    serializer_class = AuditEventSerializer
    pagination_class = WorklistPagination

    def get_queryset(self) -> Any:
        return selectors.audit_events(
            study_id=_int_param(self.request, "study"),
            model_version_id=_int_param(self.request, "model_version"),
            event_type=query_text(self.request, "event_type"),
            actor=query_text(self.request, "actor"),
            newest_first=_ordering(self.request) == "-created_at",
        )
