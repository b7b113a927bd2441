"""Thin views of the studies API: parse, call a selector or service, serialise."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lesionloop.accounts.permissions import HasRole, ReadAnyRoleWriteReviewer
from lesionloop.accounts.roles import can_manage_models
from lesionloop.core.api import parse_id, query_text
from lesionloop.core.exceptions import DomainError

from .. import selectors, services, storage, uploads
from .pagination import WorklistPagination
from .serializers import StudyDetailSerializer, StudyRowSerializer, StudyUploadSerializer

STATUS_PARAM = OpenApiParameter(
    "status", str, description="One status or several, comma-separated."
)
SEARCH_PARAM = OpenApiParameter("search", str, description="Patient label, description or id.")
ORDERING_PARAM = OpenApiParameter(
    "ordering", str, enum=list(selectors.WORKLIST_ORDERINGS), description="Default -priority."
)


@extend_schema_view(
    get=extend_schema(
        operation_id="studies_list", parameters=[STATUS_PARAM, SEARCH_PARAM, ORDERING_PARAM]
    )
)
class StudyListView(generics.ListAPIView):
    """The worklist (GET) and the upload of a new study (POST)."""

    permission_classes = [ReadAnyRoleWriteReviewer]
    parser_classes = [MultiPartParser, FormParser]
    serializer_class = StudyRowSerializer
    pagination_class = WorklistPagination

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """A POST's files stream into a staging folder from the first read of the body.

        The upload handler is set before DRF authenticates: with a browser session, the
        CSRF check reads the multipart body (Django looks for ``csrfmiddlewaretoken``
        there before the header), after which handlers can no longer be set. The staging
        folder is removed whatever the outcome (refused login, CSRF, limits, success)."""
        if request.method != "POST":
            return super().dispatch(request, *args, **kwargs)
        staging = uploads.staging_dir_new()
        try:
            request.upload_handlers = [uploads.StorageUploadHandler(staging)]
            return super().dispatch(request, *args, **kwargs)
        finally:
            uploads.staging_dir_remove(staging)

    def get_queryset(self) -> Any:
        params = self.request.query_params
        return selectors.study_worklist(
            status=query_text(self.request, "status"),
            search=query_text(self.request, "search"),
            ordering=params.get("ordering"),
        )

    @extend_schema(
        operation_id="studies_upload",
        request={"multipart/form-data": StudyUploadSerializer},
        responses={202: StudyRowSerializer},
    )
    def post(self, request: Request) -> Response:
        raw_length = str(request.META.get("CONTENT_LENGTH") or "0")
        length = parse_id(raw_length, name="Content-Length", code="bad_request")
        if length > settings.UPLOAD_MAX_BYTES:
            raise DomainError(
                f"The upload ({length} bytes) is larger than the limit of "
                f"{settings.UPLOAD_MAX_BYTES} bytes.",
                code="too_large",
                status_code=413,
            )
        # The files stream into staging as they arrive (dispatch set the handler);
        # too many files is a 400 from core.api's exception handler, wherever it is read.
        files = request.FILES.getlist("files")
        ground_truth = request.FILES.get("ground_truth")
        if ground_truth is not None and not can_manage_models(request.user):
            raise PermissionDenied("Only admins can upload ground truth.")
        study = services.study_upload(files=files, ground_truth=ground_truth, user=request.user)
        return Response(StudyRowSerializer(study).data, status=status.HTTP_202_ACCEPTED)


class StudyDetailView(APIView):
    permission_classes = [HasRole]

    @extend_schema(operation_id="studies_retrieve", responses=StudyDetailSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(StudyDetailSerializer(selectors.study_get(study_id=pk)).data)


def volume_headers(response: HttpResponse, *, shape: list[int], spacing: list[float]) -> None:
    response["X-Volume-Shape"] = ",".join(str(int(v)) for v in shape)
    response["X-Volume-Spacing"] = ",".join(f"{float(v):g}" for v in spacing)
    response["Access-Control-Expose-Headers"] = (
        "X-Volume-Shape, X-Volume-Spacing, X-Volume-Dtype, ETag, X-Revision"
    )


# The axis of the (D, H, W) display volume that a slice of each plane is taken along.
SLICE_PLANES = {"axial": 0, "coronal": 1, "sagittal": 2}


class VolumeView(APIView):
    permission_classes = [HasRole]

    @extend_schema(
        operation_id="studies_volume",
        parameters=[
            OpenApiParameter("channel", str, OpenApiParameter.PATH, enum=["mr", "ct"]),
            OpenApiParameter("slice", int, description="One slice k instead of the volume."),
            OpenApiParameter(
                "plane",
                str,
                enum=list(SLICE_PLANES),
                description="The plane of `slice` (default axial): axial (H, W) at z=k, "
                "coronal (D, W) at y=k, sagittal (D, H) at x=k; rows in z order.",
            ),
        ],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request, pk: int, channel: str) -> HttpResponse:
        if channel not in storage.DISPLAY_CHANNELS:
            raise DomainError("channel must be mr or ct.", code="bad_channel", status_code=404)
        study = selectors.study_image_get(study_id=pk)
        if not study.prepared:
            raise DomainError(
                f"The study is {study.status}; its images are not ready yet.",
                code="not_ready",
                status_code=409,
            )
        shape = list(study.grid["shape_dhw"])
        spacing = list(study.grid["spacing_mm"])
        raw_slice = request.query_params.get("slice")
        if raw_slice is not None:
            plane = request.query_params.get("plane", "axial")
            if plane not in SLICE_PLANES:
                raise DomainError("plane must be axial, coronal or sagittal.", code="bad_plane")
            axis = SLICE_PLANES[plane]
            k = parse_id(raw_slice, name="slice", code="bad_slice")
            if not k < shape[axis]:
                raise DomainError(
                    f"slice must be an integer in 0..{shape[axis] - 1}.", code="bad_slice"
                )
            volume = np.load(storage.prepared_dir(pk) / f"display_{channel}.npy", mmap_mode="r")
            body = storage.gzip_array(np.take(volume, k, axis=axis), dtype="int16")
            response: HttpResponse = HttpResponse(body, content_type="application/octet-stream")
            volume_headers(
                response,
                shape=[1 if i == axis else n for i, n in enumerate(shape)],
                spacing=spacing,
            )
        else:
            response = FileResponse(
                storage.display_file(pk, channel).open("rb"),
                content_type="application/octet-stream",
            )
            volume_headers(response, shape=shape, spacing=spacing)
        response["Content-Encoding"] = "gzip"
        response["X-Volume-Dtype"] = "int16"
        response["Cache-Control"] = "private, max-age=31536000, immutable"
        return response
