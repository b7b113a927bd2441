"""Impossible spacing, geometry and rescale values are refused with specific codes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from ml.imaging import sanity
from ml.imaging.errors import INGEST_ERROR_CODES, IngestError
from ml.imaging.pipeline import prepare_study


def _image(
    values: float = 0.0,
    spacing_xyz: tuple[float, float, float] = (1.0, 1.0, 2.0),
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> sitk.Image:
    img = sitk.GetImageFromArray(np.full((3, 4, 4), values, dtype=np.float32))
    img.SetSpacing(spacing_xyz)
    img.SetOrigin(origin)
    return img


@pytest.mark.parametrize(
    ("spacing_xyz", "code"),
    [
        ((1.0, 1.0, 2.0), None),
        ((0.05, 0.05, 0.1), None),  # the lower bounds are allowed
        ((10.0, 10.0, 20.0), None),  # the upper bounds are allowed
        ((0.04, 1.0, 2.0), "bad_pixel_spacing"),
        ((1.0, 1e300, 2.0), "bad_pixel_spacing"),
        ((1.0, 1.0, 0.09), "bad_slice_spacing"),
        ((1.0, 1.0, 25.0), "bad_slice_spacing"),
        ((1.0, 1.0, 1e300), "bad_slice_spacing"),
    ],
)
def test_spacing_bounds(spacing_xyz: tuple[float, float, float], code: str | None) -> None:
    img = _image(spacing_xyz=spacing_xyz)
    if code is None:
        sanity.check_image(img, modality="CT", label="CT")
        return
    with pytest.raises(IngestError) as err:
        sanity.check_image(img, modality="CT", label="CT")
    assert err.value.code == code


@pytest.mark.parametrize(
    ("spacing", "ok"),
    [
        ((0.5, 0.5), True),
        ((0.0, 0.5), False),
        ((-1.0, -1.0), False),
        ((math.nan, 1.0), False),
        ((math.inf, 1.0), False),
        (None, True),
    ],
)
def test_header_pixel_spacing(spacing: tuple[float, float] | None, ok: bool) -> None:
    if ok:
        sanity.check_pixel_spacing(spacing, label="CT")
    else:
        with pytest.raises(IngestError, match="pixel spacing") as err:
            sanity.check_pixel_spacing(spacing, label="CT", file="a.dcm")
        assert err.value.code == "bad_pixel_spacing" and err.value.file == "a.dcm"


@pytest.mark.parametrize(
    ("modality", "value", "code"),
    [
        ("CT", -1024.0, None),
        ("CT", 3071.0, None),
        ("CT", 65535.0, None),
        ("CT", 65536.0, "bad_rescale"),
        ("CT", -40000.0, "bad_rescale"),
        ("CT", math.inf, "bad_rescale"),
        ("CT", math.nan, "bad_rescale"),
        ("MR", 2.5e5, None),
        ("MR", 1e8, "bad_rescale"),
        ("MR", -math.inf, "bad_rescale"),
    ],
)
def test_value_ranges(modality: str, value: float, code: str | None) -> None:
    img = _image(values=value)
    if code is None:
        sanity.check_values(img, modality=modality, label=modality)
        return
    with pytest.raises(IngestError) as err:
        sanity.check_values(img, modality=modality, label=modality)
    assert err.value.code == code and "Rescale" in (err.value.tag or "")


def test_a_far_away_origin_is_bad_geometry() -> None:
    with pytest.raises(IngestError) as err:
        sanity.check_geometry(_image(origin=(0.0, 0.0, 2e5)), label="CT")
    assert err.value.code == "bad_geometry"


def test_new_codes_are_registered() -> None:
    for code in ("bad_pixel_spacing", "bad_slice_spacing", "bad_geometry", "bad_rescale"):
        assert code in INGEST_ERROR_CODES


def _mutate_ct(upload: Path, **tags: str) -> None:
    for path in sorted((upload / "ct").glob("*.dcm")):
        ds = pydicom.dcmread(path)
        for key, value in tags.items():
            setattr(ds, key, value)
        ds.save_as(path)


@pytest.mark.parametrize(
    ("tags", "code"),
    [
        ({"RescaleSlope": "inf"}, "bad_rescale"),
        ({"RescaleIntercept": "1e308"}, "bad_rescale"),
        ({"PixelSpacing": ["1e300", "1e300"]}, "bad_pixel_spacing"),
        ({"PixelSpacing": ["0", "0"]}, "bad_pixel_spacing"),
    ],
)
@pytest.mark.filterwarnings("ignore")
def test_prepare_study_refuses_impossible_headers(
    upload: Path, tmp_path: Path, tags: dict[str, str], code: str
) -> None:
    _mutate_ct(upload, **tags)
    with pytest.raises(IngestError) as err:
        prepare_study(upload, tmp_path / "out", grid="tiny")
    assert err.value.code == code
    assert not (tmp_path / "out").exists()
