"""Thin views of the viewer's rulers: the current user's, per study (services.rulers)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lesionloop.accounts.permissions import HasRole
from lesionloop.core.api import atomic_write, strict_body
from lesionloop.studies import selectors as study_selectors

from .. import selectors, services
from .serializers import ConflictSerializer, RulerRequestSerializer, RulerSerializer


class RulerListView(APIView):
    """Every role measures (read-only roles too): each user keeps their own rulers."""

    permission_classes = [HasRole]

    @extend_schema(operation_id="studies_rulers_list", responses=RulerSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        study_selectors.study_get(study_id=pk)
        rulers = selectors.study_rulers(study_id=pk, user=request.user)
        return Response(RulerSerializer(rulers, many=True).data)

    @extend_schema(
        operation_id="studies_rulers_save",
        description=(
            "Keep a ruler for the current user: {plane, slice, a: [row, col], b: [row, col]} "
            "in the plane's image pixels; it replaces their ruler in that plane. length_mm "
            "comes from the study's grid spacing. 400 bad_plane / bad_slice / bad_point / "
            "unknown_field / bad_json; 404 not_found; 409 not_ready."
        ),
        request=RulerRequestSerializer,
        responses={201: RulerSerializer, 409: ConflictSerializer},
    )
    @atomic_write
    def post(self, request: Request, pk: int) -> Response:
        data = strict_body(RulerRequestSerializer, request.data)
        ruler = services.ruler_save(
            study_id=pk,
            user=request.user,
            plane=data["plane"],
            slice_index=data["slice"],
            a=data["a"],
            b=data["b"],
        )
        return Response(RulerSerializer(ruler).data, status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="studies_rulers_clear", request=None, responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        study_selectors.study_get(study_id=pk)
        services.rulers_delete(study_id=pk, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RulerView(APIView):
    permission_classes = [HasRole]

    @extend_schema(operation_id="studies_rulers_delete", request=None, responses={204: None})
    def delete(self, request: Request, pk: int, ruler_id: int) -> Response:
        services.rulers_delete(study_id=pk, user=request.user, ruler_id=ruler_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
