"""The ingest report says the registration once: one row, one sentence, no repeats."""

from __future__ import annotations

import pytest
import SimpleITK as sitk

from ml.imaging.pipeline import registration_note
from ml.imaging.registration import RegistrationResult

QUALITY = {"rotation_deg": 8.44, "head_dice": 0.9971}


@pytest.mark.parametrize(
    ("ok", "message", "quality", "kind", "expected"),
    [
        (
            True,
            "rigid MR->CT registration ok (head Dice 1.00, rotation 8.4 deg)",
            QUALITY,
            "registration",
            "MR to CT registration ok: rotation 8.4 deg, head Dice 0.997",
        ),
        (
            False,
            "registration looks wrong: implausible rotation of 25.0 deg (> 15). "
            "Check the MR-CT overlay.",
            {"rotation_deg": 25.0, "head_dice": 0.9},
            "registration_doubtful",
            "MR to CT registration NOT ok: implausible rotation of 25.0 deg (> 15). "
            "Check the MR-CT overlay.",
        ),
        (
            False,
            "registration failed to run: no overlap",
            {},
            "registration_doubtful",
            "MR to CT registration NOT ok: failed to run: no overlap",
        ),
        (False, "", {}, "registration_doubtful", "MR to CT registration NOT ok: no reason given"),
    ],
)
def test_the_sentence_says_each_thing_once(
    ok: bool, message: str, quality: dict, kind: str, expected: str
) -> None:
    note = registration_note(
        RegistrationResult(sitk.Euler3DTransform(), ok, message, quality), series="1.2.3"
    )
    assert (note.kind, str(note), note.series) == (kind, expected, "1.2.3")
    assert str(note).count("registration") == 1
