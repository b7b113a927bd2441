"""The review lease in two real browser contexts: one tab holds it, whatever the other
tab of the same user or another user does; a tab that loses it turns read-only within
5 s, keeps its unsaved edits, and can save them after retaking the lease (through the
stale-revision dialog when someone saved in between). Nothing is lost."""

from __future__ import annotations

import gzip
import time
from typing import Any

import numpy as np
import pytest

from tests.e2e.browser_data import ready_study
from tests.e2e.browser_helpers import paint, shot, wait_case_ready

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
READ_ONLY_WITHIN_MS = 5000


def _server_mask(study: Any) -> np.ndarray:
    from lesionloop.review.models import MaskRevision
    from lesionloop.studies import storage

    study.refresh_from_db()
    rev = MaskRevision.objects.get(study=study, number=study.revision_number)
    raw = gzip.decompress(storage.absolute(rev.file).read_bytes())
    return np.frombuffer(raw, dtype="<u2").reshape(study.grid["shape_dhw"])


def _holder(study: Any) -> tuple[str | None, str]:
    study.refresh_from_db()
    return (study.lease_user.username if study.lease_user_id else None, study.lease_client)


def _client_id(page: Any) -> str:
    return page.evaluate("window.LLViewer.keeper.clientId")


def _draw(page: Any, z: int, points: list[tuple[float, float]]) -> tuple[int, int]:
    page.click("#new-lesion")
    label = page.evaluate("window.LLViewer.selected")
    paint(page, z, points)
    return label, page.evaluate(f"window.LLViewer.editor.counts.get({label})")


def _turns_read_only(page: Any) -> float:
    """Seconds until the tab shows itself read-only (fails past the 5 s promise)."""
    t0 = time.monotonic()
    page.wait_for_selector("#case.readonly", timeout=READ_ONLY_WITHIN_MS)
    return time.monotonic() - t0


def test_same_user_two_tabs(cast: Any, browser_login: Any) -> None:
    ready = ready_study(seed=11, n_lesions=2)
    study = ready.study
    url = f"/studies/{study.pk}/"
    d, h, w = study.grid["shape_dhw"]
    z = d // 2
    a = browser_login("cora", "cora-pass-1", next_path=url)
    wait_case_ready(a)
    a.wait_for_selector("#c-lease .lease.mine")
    assert _holder(study) == ("cora", _client_id(a))

    # A second tab of the same clinician looks, but does not edit; closing it frees nothing.
    b = browser_login("cora", "cora-pass-1", next_path=url)
    wait_case_ready(b)
    b.wait_for_selector("#banner-action")
    assert "another tab or window of yours" in b.locator("#banner").inner_text()
    assert b.locator("#case.readonly").count() == 1
    assert b.locator('[data-tool="brush"]').is_disabled()
    b.close()  # pagehide: the tab gives back only what it holds, i.e. nothing
    time.sleep(1.0)
    assert _holder(study) == ("cora", _client_id(a))
    admin = browser_login("ada", "ada-pass-1", next_path=url)
    wait_case_ready(admin)
    admin.wait_for_selector("#c-lease .lease.other")
    assert admin.locator("#case.readonly").count() == 1
    assert "Being reviewed by cora" in admin.locator("#banner").inner_text()

    # Tab A draws; a new tab C takes over explicitly; A turns read-only, keeps its edit.
    label_a, painted_a = _draw(a, z, [(h * 0.35, w * 0.35), (h * 0.35, w * 0.38)])
    assert painted_a > 0
    c = browser_login("cora", "cora-pass-1", next_path=url)
    wait_case_ready(c)
    c.click("#banner-action")  # "Edit here instead"
    c.wait_for_selector("#c-lease .lease.mine")
    assert _holder(study) == ("cora", _client_id(c))
    took = _turns_read_only(a)
    banner = a.locator("#banner").inner_text()
    assert "You lost the review lease" in banner and "1 unsaved edit is kept" in banner
    assert a.evaluate(f"window.LLViewer.editor.counts.get({label_a})") == painted_a
    assert a.evaluate("window.LLViewer.editor.dirty")
    shot(a, "case-lease-lost")
    # A's writes are refused now (the server agrees with the page).
    assert a.locator("#save").is_disabled()

    label_c, painted_c = _draw(c, z, [(h * 0.65, w * 0.62), (h * 0.65, w * 0.65)])
    c.click("#save")
    c.wait_for_function("document.getElementById('dirty').textContent === 'all saved'")

    # A takes the study back and saves: C saved in between, so the conflict dialog offers
    # to re-apply A's edit on top of C's revision; C turns read-only.
    a.click("#banner-action")
    a.wait_for_selector("#c-lease .lease.mine")
    _turns_read_only(c)
    a.click("#save")
    a.wait_for_selector("#conflict[open]")
    text = a.locator("#conflict-text").inner_text()
    assert "cora" in text and "revision 2" in text
    a.wait_for_function("document.getElementById('conflict-what').textContent.startsWith('They')")
    assert f"added lesion {label_c}" in a.locator("#conflict-what").inner_text()
    shot(a, "case-conflict")
    a.click("#conflict-rebase")
    a.wait_for_function("!document.getElementById('case').dataset.conflict")
    mine = a.evaluate("window.LLViewer.selected")
    assert mine != label_c
    counts = a.evaluate(
        f"[window.LLViewer.editor.counts.get({label_c}) || 0,"
        f" window.LLViewer.editor.counts.get({mine}) || 0]"
    )
    assert counts == [painted_c, painted_a]
    a.click("#save")
    a.wait_for_function("document.getElementById('dirty').textContent === 'all saved'")
    mask = _server_mask(study)
    assert (mask == label_c).sum() == painted_c and (mask == mine).sum() == painted_a
    assert took * 1000 <= READ_ONLY_WITHIN_MS
    for page in (a, c, admin):
        assert not page.js_errors, page.js_errors


def test_two_users_lease_expires_and_is_retaken(cast: Any, browser_login: Any) -> None:
    from django.utils import timezone

    from lesionloop.studies.models import Study

    ready = ready_study(seed=12, n_lesions=2)
    study = ready.study
    url = f"/studies/{study.pk}/"
    d, h, w = study.grid["shape_dhw"]
    cora = browser_login("cora", "cora-pass-1", next_path=url)
    wait_case_ready(cora)
    cora.wait_for_selector("#c-lease .lease.mine")
    carl = browser_login("carl", "carl-pass-1", next_path=url)
    wait_case_ready(carl)
    carl.wait_for_selector("#c-lease .lease.other")
    assert "Being reviewed by cora" in carl.locator("#banner").inner_text()
    assert carl.locator("#banner-action").count() == 0  # no take-over from another user

    label, painted = _draw(cora, d // 2, [(h * 0.4, w * 0.4), (h * 0.4, w * 0.43)])
    # Cora's lease lapses (her laptop slept): carl's waiting tab takes the free study.
    Study.objects.filter(pk=study.pk).update(lease_expires_at=timezone.now())
    carl.wait_for_selector("#c-lease .lease.mine", timeout=READ_ONLY_WITHIN_MS)
    _turns_read_only(cora)
    # The tab may first see the lease expired, then taken: both within a poll or two.
    cora.wait_for_function(
        "document.getElementById('banner').textContent.includes('being edited by carl')",
        timeout=READ_ONLY_WITHIN_MS,
    )
    banner = cora.locator("#banner").inner_text()
    assert "being edited by carl" in banner and "1 unsaved edit is kept" in banner
    assert cora.locator("#banner-action").count() == 0
    assert cora.evaluate(f"window.LLViewer.editor.counts.get({label})") == painted
    assert _holder(study)[0] == "carl"

    # Carl leaves; cora retakes the study and saves her edit (nobody saved in between).
    carl.close()
    cora.wait_for_selector("#banner-action", timeout=READ_ONLY_WITHIN_MS)
    assert "expired" in cora.locator("#banner").inner_text()
    cora.click("#banner-action")  # "Retake the study"
    cora.wait_for_selector("#c-lease .lease.mine")
    cora.click("#save")
    cora.wait_for_function("document.getElementById('dirty').textContent === 'all saved'")
    assert (_server_mask(study) == label).sum() == painted
    assert _holder(study) == ("cora", _client_id(cora))
    assert not cora.js_errors, cora.js_errors


def test_tabs_of_one_browser_hear_a_take_over_at_once(cast: Any, browser_login: Any) -> None:
    """Two tabs in one browser (one context): the tab taken over learns it over the
    BroadcastChannel, without waiting for its poll (stopped here to prove it)."""
    ready = ready_study(seed=13, n_lesions=2)
    url = f"/studies/{ready.study.pk}/"
    a = browser_login("cora", "cora-pass-1", next_path=url)
    wait_case_ready(a)
    a.wait_for_selector("#c-lease .lease.mine")
    a.evaluate("window.LLViewer.keeper.stop()")  # no poll, no renewal: only the channel
    b = a.context.new_page()
    b.goto(f"{a.base}{url}")
    wait_case_ready(b)
    b.wait_for_selector("#banner-action")
    b.click("#banner-action")  # "Edit here instead"
    b.wait_for_selector("#c-lease .lease.mine")
    a.wait_for_selector("#case.readonly", timeout=2000)
    assert "another tab or window of yours" in a.locator("#banner").inner_text()
    assert _holder(ready.study) == ("cora", _client_id(b))
    assert not a.js_errors, a.js_errors
