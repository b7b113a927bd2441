"""The review lease belongs to one client session (one tab, ``X-Lease-Client``): another
tab of the same user is another editor, and closing it never frees the lease of the tab
still in use. Two editors never hold the lease at once."""

from __future__ import annotations

from typing import Any

import pytest

from lesionloop.studies.models import Study
from tests.platform_tests.studies.helpers import make_study

pytestmark = pytest.mark.django_db


class Tab:
    """One browser tab: a user's API client that names its client session."""

    def __init__(self, client: Any, name: str, study_id: int) -> None:
        self.client, self.name, self.url = client, name, f"/api/studies/{study_id}"

    def _h(self) -> dict[str, str]:
        return {"HTTP_X_LEASE_CLIENT": self.name} if self.name else {}

    def take(self, **body: Any) -> Any:
        return self.client.post(f"{self.url}/lease/", body, format="json", **self._h())

    def release(self) -> Any:
        return self.client.delete(f"{self.url}/lease/", **self._h())

    def state(self) -> dict[str, Any]:
        return self.client.get(f"{self.url}/lease/", **self._h()).json()

    def decide(self, lesion_id: int, decision: str = "accepted") -> Any:
        return self.client.patch(
            f"{self.url}/lesions/{lesion_id}/", {"decision": decision}, format="json", **self._h()
        )

    def approve(self) -> Any:
        return self.client.post(
            f"{self.url}/approve/", {"training_eligible": False}, format="json", **self._h()
        )


@pytest.fixture
def tabs(api: Any, cast: Any) -> Any:
    study = make_study()

    def make(user: str, name: str) -> Tab:
        return Tab(api(getattr(cast, user)), name, study.pk)

    return study, make


def status(response: Any) -> tuple[int, str | None]:
    code = response.json().get("code") if response.status_code >= 400 else None
    return response.status_code, code


# (case, the tab that holds the lease, the other tab, what the other tab does,
#  expected (status, code), holder afterwards (user, client))
CASES = [
    ("same user, other tab takes", ("clinician", "tab-a"), ("clinician", "tab-b"), "take", (409, "leased"), ("cora", "tab-a")),
    ("same user, other tab closes", ("clinician", "tab-a"), ("clinician", "tab-b"), "release", (409, "leased"), ("cora", "tab-a")),
    ("same user, other tab decides", ("clinician", "tab-a"), ("clinician", "tab-b"), "decide", (409, "leased"), ("cora", "tab-a")),
    ("same user, other tab approves", ("clinician", "tab-a"), ("clinician", "tab-b"), "approve", (409, "leased"), ("cora", "tab-a")),
    ("same user, script without a client", ("clinician", "tab-a"), ("clinician", ""), "decide", (409, "leased"), ("cora", "tab-a")),
    ("same user, other tab takes over", ("clinician", "tab-a"), ("clinician", "tab-b"), "take_over", (200, None), ("cora", "tab-b")),
    ("other user takes", ("clinician", "tab-a"), ("clinician2", "tab-c"), "take", (409, "leased"), ("cora", "tab-a")),
    ("other user closes", ("clinician", "tab-a"), ("clinician2", "tab-c"), "release", (409, "leased"), ("cora", "tab-a")),
    ("other user decides", ("clinician", "tab-a"), ("clinician2", "tab-c"), "decide", (409, "leased"), ("cora", "tab-a")),
    ("other user cannot take over", ("clinician", "tab-a"), ("clinician2", "tab-c"), "take_over", (409, "leased"), ("cora", "tab-a")),
    ("admin cannot take over", ("clinician", "tab-a"), ("admin", "tab-d"), "take_over", (409, "leased"), ("cora", "tab-a")),
    ("the holding tab closes", ("clinician", "tab-a"), ("clinician", "tab-a"), "release", (204, None), (None, "")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "holder", "other", "action", "expected", "after"), CASES, ids=[c[0] for c in CASES]
)
def test_one_tab_holds_the_lease(
    tabs: Any, case: str, holder: Any, other: Any, action: str, expected: Any, after: Any
) -> None:
    study, make = tabs
    first, second = make(*holder), make(*other)
    assert first.take().status_code == 200
    lesion = study.lesions.order_by("label").first()
    response = {
        "take": second.take,
        "take_over": lambda: second.take(take_over=True),
        "release": second.release,
        "decide": lambda: second.decide(lesion.pk),
        "approve": second.approve,
    }[action]()
    assert status(response) == expected, response.content
    study = Study.objects.get(pk=study.pk)
    holder_name = study.lease_user.get_username() if study.lease_user_id else None
    assert (holder_name, study.lease_client) == after
    if expected[0] == 409:
        assert response.json()["user"] == "cora"
        assert response.json()["yours"] is (other[0] == "clinician")
    # The tab that holds the lease can still write, unless it was taken over.
    write = first.decide(lesion.pk, "rejected")
    assert write.status_code == (409 if action == "take_over" and expected[0] == 200 else 200)


def test_the_lease_state_a_tab_polls(tabs: Any) -> None:
    study, make = tabs
    a, b, carl = make("clinician", "tab-a"), make("clinician", "tab-b"), make("clinician2", "c")
    assert a.state()["user"] is None and a.state()["mine"] is False
    a.take()
    assert (a.state()["mine"], a.state()["yours"], a.state()["user"]) == (True, True, "cora")
    assert (b.state()["mine"], b.state()["yours"]) == (False, True)
    assert (carl.state()["mine"], carl.state()["yours"]) == (False, False)
    assert a.state()["revision"] == 1 and a.state()["status"] == "in_review"
    b.take(take_over=True)
    assert (a.state()["mine"], b.state()["mine"]) == (False, True)
    events = list(study.audit_events.values_list("event_type", flat=True))
    assert "lease_taken_over" in events


@pytest.mark.parametrize(
    "value", ["has space", "x" * 65, "semi;colon", "ünï"], ids=["space", "long", "semi", "uni"]
)
def test_a_malformed_client_id_is_400(tabs: Any, value: str) -> None:
    study, make = tabs
    tab = make("clinician", "")
    response = tab.client.post(f"{tab.url}/lease/", HTTP_X_LEASE_CLIENT=value)
    assert status(response) == (400, "bad_lease_client")
    assert Study.objects.get(pk=study.pk).lease_user_id is None
