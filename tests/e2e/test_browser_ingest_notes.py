"""The case page lists what ingest ignored, repaired or doubts ("Ingest notes",
js/report.js) in the real browser: a study ingested with a localizer inside its CT
series and a SpacingBetweenSlices header that disagrees with the slice positions,
whose CT series description carries markup that must show as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser_data import ready_study
from tests.e2e.browser_helpers import shot
from tests.ml_tests.imaging.fault_builders import (
    edit_all,
    localizer_in_ct_series,
    series_files,
    spacing_header,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MARKUP = 'Head <img src=x onerror="window.__injected = 1"> CT'


def _quirks(dicom: Path) -> None:
    edit_all(series_files(dicom, "ct"), lambda ds: setattr(ds, "SeriesDescription", MARKUP))
    localizer_in_ct_series(dicom)
    spacing_header(dicom)


def _notes(page: Any) -> list[dict[str, str]]:
    return page.evaluate(
        """() => [...document.querySelectorAll('#ingest-notes li.ingest-note')].map(li => ({
            kind: li.dataset.kind, severity: li.dataset.severity, text: li.innerText,
        }))"""
    )


def test_case_page_lists_the_ingest_notes_as_text(cast: Any, browser_login: Any) -> None:
    from lesionloop.studies.models import Study

    quirky = ready_study(seed=9, n_lesions=2, quirks=_quirks).study
    clean = ready_study(seed=5, n_lesions=2).study
    # A study whose report lists nothing (as stored before ingest notes existed).
    Study.objects.filter(pk=clean.pk).update(report={"found": [], "ignored": []})

    page = browser_login("cora", "cora-pass-1", next_path=f"/studies/{quirky.pk}/")
    page.wait_for_selector("#ingest-notes:not([hidden]) li.ingest-note")
    notes = {n["kind"]: n for n in _notes(page)}
    assert {"localizer_dropped", "spacing_header_mismatch", "registration"} <= set(notes)
    scout = notes["localizer_dropped"]
    assert scout["severity"] == "info"
    assert "ct/SCOUT.dcm" in scout["text"] and quirky.dicom["ct_series_uid"] in scout["text"]
    # The series description is shown as the text it is, never as markup.
    assert "<img" in scout["text"]
    assert page.locator("#ingest-notes img").count() == 0
    assert page.evaluate("window.__injected === undefined")
    assert notes["spacing_header_mismatch"]["severity"] == "warning"
    assert "9 mm" in notes["spacing_header_mismatch"]["text"]
    # A warning opens the panel, and warnings come first.
    assert page.locator("#ingest-notes").evaluate("d => d.open") is True
    severities = [n["severity"] for n in _notes(page)]
    assert severities == sorted(severities, key=lambda s: s != "warning")
    shot(page, "case-ingest-notes")
    assert page.js_errors == []  # type: ignore[attr-defined]

    page.goto(f"{page.base}/studies/{clean.pk}/")
    page.wait_for_selector('#ingest-notes:not([hidden])[data-count="0"]')
    assert page.locator("#ingest-notes").evaluate("d => d.open") is False
    assert "(none)" in page.locator("#ingest-notes summary").text_content()
    assert page.locator("#ingest-notes li").count() == 0
    assert page.js_errors == []  # type: ignore[attr-defined]
