"""Training-run endpoints (docs/API.md, "Models and training"). Writes: admin only."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lesionloop.accounts.permissions import ReadAnyRoleWriteAdmin
from lesionloop.core.exceptions import DomainError
from lesionloop.registry.api.serializers import validated
from lesionloop.training import selectors, services
from lesionloop.training.models import TrainingRun

from .serializers import TrainingRunSerializer, TrainingRunStartSerializer


def _run(run_id: int) -> TrainingRun:
    try:
        return selectors.training_run_get(run_id=run_id)
    except TrainingRun.DoesNotExist:
        raise DomainError("No such training run.", code="not_found", status_code=404) from None


def _refuse_unknown_fields(data: object, serializer_class: type) -> None:
    """400 ``unknown_field`` for a body field the serializer does not take: a misplaced
    ``{"epochs": 500}`` (outside ``hyperparameters``) must not start a default run."""
    if not isinstance(data, dict):
        return  # the serializer refuses a non-object body
    unknown = sorted(str(key) for key in set(data) - set(serializer_class().fields))
    if unknown:
        raise DomainError(
            f"Unknown field(s): {', '.join(unknown)[:200]}. "
            f"Accepted: {', '.join(serializer_class().fields)}.",
            code="unknown_field",
            extra={"fields": unknown[:20]},
        )


class TrainingRunListView(generics.ListAPIView):
    permission_classes = [ReadAnyRoleWriteAdmin]
    serializer_class = TrainingRunSerializer

    def get_queryset(self) -> Any:
        return selectors.training_run_list()

    @extend_schema(request=TrainingRunStartSerializer, responses={202: TrainingRunSerializer})
    def post(self, request: Request) -> Response:
        _refuse_unknown_fields(request.data, TrainingRunStartSerializer)
        data = validated(TrainingRunStartSerializer, request.data)
        run = services.training_run_start(
            started_by=request.user, overrides=data["hyperparameters"]
        )
        return Response(TrainingRunSerializer(_run(run.pk)).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunDetailView(generics.RetrieveAPIView):
    permission_classes = [ReadAnyRoleWriteAdmin]
    serializer_class = TrainingRunSerializer

    def get_object(self) -> TrainingRun:
        return _run(self.kwargs["run_id"])


class TrainingRunCancelView(APIView):
    permission_classes = [ReadAnyRoleWriteAdmin]

    @extend_schema(request=None, responses={202: TrainingRunSerializer})
    def post(self, request: Request, run_id: int) -> Response:
        _run(run_id)
        run = services.training_run_cancel(run_id=run_id, user=request.user)
        return Response(TrainingRunSerializer(_run(run.pk)).data, status=status.HTTP_202_ACCEPTED)
