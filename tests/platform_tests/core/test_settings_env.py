"""Settings read from the environment fail loudly on nonsense (``settings/env.py``)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from lesionloop.settings.env import env_choice

# (raw value or None when unset, the setting's value or None when refused)
FSYNC_VALUES = [
    (None, "batch"),
    ("", "batch"),
    ("object", "object"),
    (" Batch ", "batch"),
    ("OBJECT", "object"),
    ("always", None),
    ("0", None),
]


@pytest.mark.parametrize(("raw", "expected"), FSYNC_VALUES)
def test_env_choice(monkeypatch: pytest.MonkeyPatch, raw: str | None, expected: str | None) -> None:
    if raw is None:
        monkeypatch.delenv("LESIONLOOP_DICOM_FSYNC", raising=False)
    else:
        monkeypatch.setenv("LESIONLOOP_DICOM_FSYNC", raw)
    choose = lambda: env_choice("LESIONLOOP_DICOM_FSYNC", "batch", ("batch", "object"))  # noqa: E731
    if expected is None:
        with pytest.raises(ImproperlyConfigured, match="must be one of batch, object"):
            choose()
    else:
        assert choose() == expected
