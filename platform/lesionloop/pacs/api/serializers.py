"""Input and output shapes of the DICOM network endpoints."""

from __future__ import annotations

from rest_framework import serializers

from ..models import DicomSend, RemoteNode, Retrieve


class RemoteNodeSerializer(serializers.ModelSerializer):
    class Meta:
        model = RemoteNode
        fields = [
            "id",
            "name",
            "ae_title",
            "host",
            "port",
            "can_query",
            "can_store",
            "send_on_approval",
            "enabled",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]


class RemoteNodeInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    ae_title = serializers.RegexField(r"^[ -~]{1,16}$", max_length=16)
    host = serializers.CharField(max_length=255)
    port = serializers.IntegerField(min_value=1, max_value=65535)
    can_query = serializers.BooleanField(default=False)
    can_store = serializers.BooleanField(default=False)
    send_on_approval = serializers.BooleanField(default=False)
    enabled = serializers.BooleanField(default=True)


class FindInputSerializer(serializers.Serializer):
    patient_id = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)
    accession_number = serializers.CharField(
        max_length=16, required=False, default="", allow_blank=True
    )


class RetrieveInputSerializer(FindInputSerializer):
    study_instance_uid = serializers.CharField(
        max_length=64, required=False, default="", allow_blank=True
    )


class FindResultSerializer(serializers.Serializer):
    StudyInstanceUID = serializers.CharField()
    PatientID = serializers.CharField()
    PatientName = serializers.CharField()
    AccessionNumber = serializers.CharField()
    StudyDate = serializers.CharField()
    StudyDescription = serializers.CharField()
    ModalitiesInStudy = serializers.CharField()
    NumberOfStudyRelatedInstances = serializers.CharField()


class RetrieveSerializer(serializers.ModelSerializer):
    node = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = Retrieve
        fields = [
            "id",
            "node",
            "patient_id",
            "accession_number",
            "study_instance_uid",
            "status",
            "attempts",
            "studies",
            "error",
            "created_at",
            "finished_at",
        ]


class SendInputSerializer(serializers.Serializer):
    node = serializers.IntegerField()
    formats = serializers.ListField(
        child=serializers.CharField(max_length=16),  # "rtstruct", "seg"; checked by the service
        default=lambda: ["rtstruct", "seg"],
    )


class DicomSendSerializer(serializers.ModelSerializer):
    node_name = serializers.CharField(source="node.name", read_only=True)

    class Meta:
        model = DicomSend
        fields = [
            "id",
            "node",
            "node_name",
            "study",
            "revision",
            "format",
            "status",
            "attempts",
            "sop_instance_uids",
            "remote_status",
            "error",
            "automatic",
            "created_at",
            "updated_at",
        ]
