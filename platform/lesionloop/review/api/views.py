"""Thin views of the review API: mask, lesions, lease, approval, export."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lesionloop.accounts.permissions import HasRole, IsReviewer, ReadAnyRoleWriteReviewer
from lesionloop.core.api import atomic_write, strict_body
from lesionloop.core.exceptions import DomainError
from lesionloop.core.text import clean_text
from lesionloop.loop import flows
from lesionloop.studies import selectors as study_selectors
from lesionloop.studies import storage
from lesionloop.studies.api.serializers import (
    LeaseSerializer,
    StudyDetailSerializer,
    lease_of,
)
from lesionloop.studies.api.views import volume_headers

from .. import selectors, services
from .headers import lease_client, parse_if_match
from .serializers import (
    ApproveSerializer,
    ConflictSerializer,
    LeaseStateSerializer,
    LeaseTakeSerializer,
    LesionDecisionSerializer,
    LesionProposalRequestSerializer,
    LesionProposalSerializer,
    LesionSerializer,
    MaskSavedSerializer,
    ReviewEffortSerializer,
)

LEASE_CLIENT_HEADER = OpenApiParameter(
    "X-Lease-Client",
    str,
    OpenApiParameter.HEADER,
    description="The client session (browser tab) holding the review lease.",
)


class RawMaskParser(BaseParser):
    """The request body as bytes, capped so a client cannot exhaust memory."""

    media_type = "application/octet-stream"

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Any = None
    ) -> bytes:
        cap = parser_context.get("max_bytes", 1 << 30) if parser_context else 1 << 30
        data = stream.read(cap + 1) if stream is not None else b""
        if len(data) > cap:
            raise DomainError("The mask body is too large.", code="too_large", status_code=413)
        return data


class MaskView(APIView):
    permission_classes = [ReadAnyRoleWriteReviewer]
    parser_classes = [RawMaskParser]

    @extend_schema(
        operation_id="studies_mask_retrieve",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        study = study_selectors.study_image_get(study_id=pk)
        revision = selectors.revision_current(study_id=pk, number=study.revision_number)
        if revision is None:
            raise DomainError(
                f"The study is {study.status}; it has no mask yet.",
                code="not_ready",
                status_code=409,
            )
        etag = revision.etag
        if request.headers.get("If-None-Match") == etag:
            response: HttpResponse = HttpResponse(status=304)
        else:
            response = FileResponse(
                storage.absolute(revision.file).open("rb"), content_type="application/octet-stream"
            )
            response["Content-Encoding"] = "gzip"
        volume_headers(response, shape=study.grid["shape_dhw"], spacing=study.grid["spacing_mm"])
        response["X-Volume-Dtype"] = "uint16"
        response["ETag"] = etag
        response["X-Revision"] = str(revision.number)
        response["Cache-Control"] = "private, no-cache"
        return response

    @extend_schema(
        operation_id="studies_mask_update",
        parameters=[
            OpenApiParameter(
                "If-Match",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description='The revision the edit started from, e.g. "3".',
            ),
            OpenApiParameter("X-Reason", str, OpenApiParameter.HEADER),
            LEASE_CLIENT_HEADER,
        ],
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={200: MaskSavedSerializer, 409: ConflictSerializer},
    )
    @atomic_write
    def put(self, request: Request, pk: int) -> Response:
        study = study_selectors.study_image_get(study_id=pk)
        if not study.grid:
            raise DomainError("The study has no images yet.", code="not_ready", status_code=409)
        d, h, w = study.grid["shape_dhw"]
        # gzip of incompressible data is barely larger than the data itself.
        request.parser_context["max_bytes"] = 2 * d * h * w + (1 << 20)
        body = request.data
        if not isinstance(body, bytes):
            raise DomainError("Send the mask as application/octet-stream.", code="bad_mask")
        gzipped = "gzip" in request.headers.get("Content-Encoding", "").lower()
        reason = clean_text(request.headers.get("X-Reason", ""), max_len=500)
        client = lease_client(request)  # 400 bad_lease_client before 428 / 400 If-Match
        base_revision = parse_if_match(request.headers.get("If-Match"))
        revision, lesions = services.mask_save(
            study_id=pk,
            user=request.user,
            body=body,
            gzipped=gzipped,
            base_revision=base_revision,
            reason=reason,
            client=client,
        )
        data = MaskSavedSerializer({"revision": revision, "lesions": lesions}).data
        response = Response(data)
        response["ETag"] = revision.etag
        response["X-Revision"] = str(revision.number)
        return response


class LesionListView(APIView):
    permission_classes = [HasRole]

    @extend_schema(
        operation_id="studies_lesions_list",
        parameters=[OpenApiParameter("ordering", str, enum=["volume_mm3", "-volume_mm3"])],
        responses=LesionSerializer(many=True),
    )
    def get(self, request: Request, pk: int) -> Response:
        study_selectors.study_image_get(study_id=pk)
        lesions = selectors.study_lesions(
            study_id=pk, ordering=request.query_params.get("ordering")
        )
        return Response(LesionSerializer(lesions, many=True).data)


class LesionDecisionView(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(
        operation_id="studies_lesions_decide",
        parameters=[LEASE_CLIENT_HEADER],
        request=LesionDecisionSerializer,
        responses={200: LesionSerializer, 409: ConflictSerializer},
    )
    @atomic_write
    def patch(self, request: Request, pk: int, lesion_id: int) -> Response:
        payload = LesionDecisionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        lesion = services.lesion_decide(
            study_id=pk,
            lesion_id=lesion_id,
            user=request.user,
            decision=payload.validated_data["decision"],
            client=lease_client(request),
        )
        lesion = selectors.study_lesions(study_id=pk).get(pk=lesion.pk)
        return Response(LesionSerializer(lesion).data)


class LeaseView(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(
        operation_id="studies_lease_state",
        parameters=[LEASE_CLIENT_HEADER],
        responses={200: LeaseStateSerializer},
    )
    def get(self, request: Request, pk: int) -> Response:
        study = study_selectors.study_get(study_id=pk)
        state = selectors.lease_state(study=study, user=request.user, client=lease_client(request))
        return Response(LeaseStateSerializer(state).data)

    @extend_schema(
        operation_id="studies_lease_take",
        parameters=[LEASE_CLIENT_HEADER],
        request=LeaseTakeSerializer,
        responses={200: LeaseSerializer, 409: ConflictSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        payload = LeaseTakeSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        study = services.lease_take(
            study_id=pk,
            user=request.user,
            client=lease_client(request),
            take_over=payload.validated_data["take_over"],
            active=payload.validated_data["active"],
        )
        return Response(LeaseSerializer(lease_of(study)).data)

    @extend_schema(
        operation_id="studies_lease_release",
        parameters=[LEASE_CLIENT_HEADER],
        request=None,
        responses={204: None, 409: ConflictSerializer},
    )
    def delete(self, request: Request, pk: int) -> Response:
        services.lease_release(study_id=pk, user=request.user, client=lease_client(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApproveView(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(
        operation_id="studies_approve",
        parameters=[LEASE_CLIENT_HEADER],
        request=ApproveSerializer,
        responses={200: StudyDetailSerializer, 409: ConflictSerializer},
    )
    @atomic_write
    def post(self, request: Request, pk: int) -> Response:
        payload = ApproveSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        flows.study_approve(
            study_id=pk,
            user=request.user,
            training_eligible=payload.validated_data["training_eligible"],
            client=lease_client(request),
            expected_decisions=payload.validated_data.get("decisions"),
        )
        return Response(StudyDetailSerializer(study_selectors.study_get(study_id=pk)).data)


class ReopenView(APIView):
    permission_classes = [IsReviewer]

    @extend_schema(
        operation_id="studies_reopen",
        parameters=[LEASE_CLIENT_HEADER],
        request=None,
        responses={200: StudyDetailSerializer, 409: ConflictSerializer},
    )
    @atomic_write
    def post(self, request: Request, pk: int) -> Response:
        services.study_reopen(study_id=pk, user=request.user, client=lease_client(request))
        return Response(StudyDetailSerializer(study_selectors.study_get(study_id=pk)).data)


def _attachment(data: bytes, name: str, content_type: str) -> HttpResponse:
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


class ExportNiftiView(APIView):
    permission_classes = [HasRole]

    @extend_schema(
        operation_id="studies_export_nifti",
        responses={(200, "application/gzip"): OpenApiTypes.BINARY, 409: ConflictSerializer},
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        return _attachment(
            *services.study_export_nifti(study_id=pk, user=request.user), "application/gzip"
        )


class ExportRtstructView(APIView):
    permission_classes = [HasRole]

    @extend_schema(
        operation_id="studies_export_rtstruct",
        description=(
            "Kept lesions as a DICOM RT Structure Set (one GTV ROI per lesion) referencing "
            "the original planning CT."
        ),
        responses={(200, "application/dicom"): OpenApiTypes.BINARY, 409: ConflictSerializer},
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        return _attachment(
            *services.study_export_rtstruct(study_id=pk, user=request.user), "application/dicom"
        )


class ExportSegView(APIView):
    permission_classes = [HasRole]

    @extend_schema(
        operation_id="studies_export_seg",
        description=(
            "Kept lesions as a binary DICOM Segmentation (one segment per lesion) on the "
            "original planning CT."
        ),
        responses={(200, "application/dicom"): OpenApiTypes.BINARY, 409: ConflictSerializer},
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        return _attachment(
            *services.study_export_seg(study_id=pk, user=request.user), "application/dicom"
        )


class ExportReportView(APIView):
    permission_classes = [HasRole]

    @extend_schema(
        operation_id="studies_export_report",
        description=(
            "The kept lesions' measurements as CSV: volume (mm3), longest axial and longest "
            "3D diameter (mm, voxel centres), largest slice, centroid (mm)."
        ),
        responses={(200, "text/csv"): OpenApiTypes.BINARY, 409: ConflictSerializer},
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        return _attachment(
            *services.study_export_report(study_id=pk, user=request.user),
            "text/csv; charset=utf-8",
        )


class LesionProposalView(APIView):
    """Click to add: a lesion grown from a clicked voxel, proposed and not stored."""

    permission_classes = [IsReviewer]

    @extend_schema(
        operation_id="studies_propose_lesion",
        description=(
            "Grow a lesion from the clicked voxel in the current model's probability map, "
            "else the MR, within radius_mm, avoiding lesions on the working mask. Nothing "
            "is stored: paint the proposal into the mask and save it (PUT mask) to keep it. "
            "ignore_labels: labels erased in the viewer, not saved yet (their voxels count "
            "as free). 400 bad_point / bad_radius / bad_labels / unknown_field; "
            "409 approved / not_ready; "
            "422 no_lesion_found."
        ),
        request=LesionProposalRequestSerializer,
        responses={200: LesionProposalSerializer, 409: ConflictSerializer, 422: ConflictSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        data = strict_body(LesionProposalRequestSerializer, request.data)
        proposal = services.lesion_propose(
            study_id=pk,
            point_zyx=(data["z"], data["y"], data["x"]),
            radius_mm=data["radius_mm"],
            ignore_labels=data["ignore_labels"],
        )
        return Response(LesionProposalSerializer(proposal).data)


class ReviewEffortView(APIView):
    """``GET /api/review-effort/``: review effort per model version (every role may read);
    ``?model_version=<id>`` adds that version's studies one by one."""

    permission_classes = [HasRole]

    @extend_schema(
        parameters=[OpenApiParameter("model_version", int, required=False)],
        responses={200: ReviewEffortSerializer},
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("model_version")
        data: dict[str, Any] = {"results": selectors.review_effort_by_model_version()}
        if raw is not None:
            if not raw.isdigit():
                raise DomainError("model_version must be a version id.", code="bad_model_version")
            data["studies"] = list(selectors.review_efforts(model_version_id=int(raw)))
        return Response(ReviewEffortSerializer(data).data)
