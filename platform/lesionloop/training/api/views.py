"""Training-run endpoints (docs/API.md, "Models and training"). Writes: admin only."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lesionloop.accounts.permissions import ReadAnyRoleWriteAdmin
from lesionloop.core.api import strict_body
from lesionloop.core.exceptions import DomainError
from lesionloop.training import selectors, services
from lesionloop.training.models import TrainingRun

from .serializers import (
    TrainingEstimateSerializer,
    TrainingRunSerializer,
    TrainingRunStartSerializer,
)


def _start_body(data: Any) -> dict[str, Any]:
    """The start request's fields; unknown ones are refused (400 ``unknown_field``).
    (Bounds of the overrides themselves live in ``training.config``.)"""
    return strict_body(TrainingRunStartSerializer, {} if data is None else data)


def _run(run_id: int) -> TrainingRun:
    try:
        return selectors.training_run_get(run_id=run_id)
    except TrainingRun.DoesNotExist:
        raise DomainError("No such training run.", code="not_found", status_code=404) from None


class TrainingRunListView(generics.ListAPIView):
    permission_classes = [ReadAnyRoleWriteAdmin]
    serializer_class = TrainingRunSerializer

    def get_queryset(self) -> Any:
        return selectors.training_run_list()

    @extend_schema(
        request=TrainingRunStartSerializer,
        responses={202: TrainingRunSerializer},
        description=(
            'Queue a retraining. Body: {} or {"hyperparameters": {...}}; an unknown '
            "field is refused (400 unknown_field). GET /api/training-runs/estimate/ says "
            "how long it will take."
        ),
    )
    def post(self, request: Request) -> Response:
        data = _start_body(request.data)
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


class TrainingEstimateView(APIView):
    permission_classes = [ReadAnyRoleWriteAdmin]

    @extend_schema(
        responses={200: TrainingEstimateSerializer},
        description=(
            "How long a retraining started now would take: its time budget, the hard "
            "limit, the expected wall time and the recent runs' durations."
        ),
    )
    def get(self, request: Request) -> Response:
        from lesionloop.training.estimate import training_run_estimate

        return Response(TrainingEstimateSerializer(training_run_estimate()).data)
