"""drf-spectacular describes the studies/review/audit views without warnings or errors."""

from __future__ import annotations

import pytest
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator


def test_schema_of_our_views_is_clean() -> None:
    patterns = [
        path("api/", include("lesionloop.studies.api.urls")),
        path("api/", include("lesionloop.review.api.urls")),
        path("api/", include("lesionloop.audit.api.urls")),
    ]
    GENERATOR_STATS.reset()
    GENERATOR_STATS.enable_trace_lineno()
    schema = SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)
    assert not GENERATOR_STATS._warn_cache, list(GENERATOR_STATS._warn_cache)
    assert not GENERATOR_STATS._error_cache, list(GENERATOR_STATS._error_cache)
    paths = schema["paths"]
    assert {
        "/api/studies/",
        "/api/studies/{id}/mask/",
        "/api/audit/",
        "/api/studies/{id}/export/nifti",
        "/api/studies/{id}/export/rtstruct",
        "/api/studies/{id}/export/seg",
    } <= set(paths)
    assert (
        "application/octet-stream"
        in paths["/api/studies/{id}/mask/"]["put"]["requestBody"]["content"]
    )
    assert "page_size" in {p["name"] for p in paths["/api/studies/"]["get"]["parameters"]}


@pytest.mark.django_db
def test_whole_project_schema_generates() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert "/api/studies/{id}/lesions/{lesion_id}/" in schema["paths"]
