"""GET /api/studies/{id}/ and the binary display volumes."""

from __future__ import annotations

import gzip
from typing import Any

import numpy as np
import pytest

from lesionloop.studies import storage

from .helpers import SHAPE, make_study

pytestmark = pytest.mark.django_db


def test_detail_shape(api: Any, cast: Any) -> None:
    study = make_study()
    body = api(cast.auditor).get(f"/api/studies/{study.pk}/").json()
    assert body["grid"] == {
        "shape_dhw": list(SHAPE),
        "spacing_mm": [4.0, 3.0, 3.0],
        "origin_xyz_mm": [0.0, 0.0, 0.0],
        "direction": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        "preset": "tiny",
    }
    assert body["revision"]["number"] == 1 and body["revision"]["etag"] == '"1"'
    assert body["revision"]["author"].startswith("model ")
    assert body["training_eligible"] is False
    assert body["report"] == {"found": ["CT", "MR"], "ignored": []}
    assert body["registration"]["ok"] is True


def test_missing_study_is_404(api: Any, cast: Any) -> None:
    response = api(cast.clinician).get("/api/studies/999999/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


@pytest.mark.parametrize("channel", ["mr", "ct"])
def test_whole_volume_is_the_precompressed_file(api: Any, cast: Any, channel: str) -> None:
    study = make_study()
    response = api(cast.clinician).get(f"/api/studies/{study.pk}/volume/{channel}/")
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert response["X-Volume-Shape"] == "8,32,32"
    assert response["X-Volume-Spacing"] == "4,3,3"
    assert response["X-Volume-Dtype"] == "int16"
    assert "immutable" in response["Cache-Control"]
    raw = gzip.decompress(b"".join(response.streaming_content))
    volume = np.frombuffer(raw, dtype="<i2").reshape(SHAPE)
    expected = np.load(storage.prepared_dir(study.pk) / f"display_{channel}.npy")
    assert np.array_equal(volume, expected)


def test_one_slice(api: Any, cast: Any) -> None:
    study = make_study()
    response = api(cast.clinician).get(f"/api/studies/{study.pk}/volume/ct/?slice=3")
    assert response.status_code == 200 and response["X-Volume-Shape"] == "1,32,32"
    got = np.frombuffer(gzip.decompress(response.content), dtype="<i2").reshape(32, 32)
    assert np.array_equal(got, np.load(storage.prepared_dir(study.pk) / "display_ct.npy")[3])


@pytest.mark.parametrize(
    ("query", "shape_header", "take"),
    [
        ("slice=3&plane=axial", "1,32,32", lambda v: v[3]),
        ("slice=5&plane=coronal", "8,1,32", lambda v: v[:, 5, :]),
        ("slice=31&plane=sagittal", "8,32,1", lambda v: v[:, :, 31]),
    ],
)
def test_one_slice_of_each_plane(
    api: Any, cast: Any, query: str, shape_header: str, take: Any
) -> None:
    study = make_study()
    response = api(cast.clinician).get(f"/api/studies/{study.pk}/volume/mr/?{query}")
    assert response.status_code == 200 and response["X-Volume-Shape"] == shape_header
    expected = take(np.load(storage.prepared_dir(study.pk) / "display_mr.npy"))
    got = np.frombuffer(gzip.decompress(response.content), dtype="<i2").reshape(expected.shape)
    assert np.array_equal(got, expected)


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("volume/pet/", 404, "bad_channel"),
        ("volume/mr/?slice=8&plane=coronal", 200, None),
        ("volume/mr/?slice=32&plane=coronal", 400, "bad_slice"),
        ("volume/mr/?slice=32&plane=sagittal", 400, "bad_slice"),
        ("volume/mr/?slice=1&plane=oblique", 400, "bad_plane"),
        ("volume/mr/?slice=1&plane=", 400, "bad_plane"),
        ("volume/mr/?slice=8", 400, "bad_slice"),
        ("volume/mr/?slice=-1", 400, "bad_slice"),
        ("volume/mr/?slice=x", 400, "bad_slice"),
    ],
)
def test_bad_volume_requests(api: Any, cast: Any, path: str, status: int, code: str) -> None:
    study = make_study()
    response = api(cast.clinician).get(f"/api/studies/{study.pk}/{path}")
    assert response.status_code == status
    if code is not None:
        assert response.json()["code"] == code


def test_volume_of_an_unprepared_study_is_409(api: Any, cast: Any) -> None:
    from lesionloop.studies.models import Study

    study = Study.objects.create()
    response = api(cast.clinician).get(f"/api/studies/{study.pk}/volume/mr/")
    assert response.status_code == 409 and response.json()["code"] == "not_ready"
