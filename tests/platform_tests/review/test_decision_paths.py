"""Review safety: the export holds exactly the kept lesions (accepted, edited, added),
whatever sequence of decisions, edits, undo/redo and reopen led there.

Each row of ``PATHS`` is a sequence of steps a clinician can take in the viewer, played
through the services, and the set of labels the export must hold at the end - written
out by hand from the story, not computed from the decisions. ``undo`` and ``redo``
replay what the viewer's history does: a decision is set back (``accepted`` for a kept
lesion, which the server maps to its contour's own decision), a mask edit saves the
mask as it was; a mask edit that erased a lesion whole (and so rejected it) first puts
its decision back. The study (``make_study``) has three model lesions: 1 (1 voxel),
2 (18 voxels), 3 (108 voxels), on an 8x32x32 grid of 4x3x3 mm voxels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk

from lesionloop.core.exceptions import DomainError
from lesionloop.review import services
from lesionloop.review.models import Lesion
from lesionloop.studies import storage
from lesionloop.studies.models import Study
from tests.platform_tests.studies.helpers import make_study, mask_bytes

pytestmark = pytest.mark.django_db

FREE_CORNER = (slice(0, 2), slice(28, 31), slice(0, 3))  # 18 voxels far from every lesion


def _with_ct_reference(study: Study) -> None:
    """The model grid is the CT grid: the NIfTI export can then be read label by label."""
    path = storage.prepared_dir(study.pk) / "study.json"
    meta = json.loads(path.read_text())
    meta["grid"] = dict(study.grid)
    meta["ct_geometry"] = dict(study.grid)
    path.write_text(json.dumps(meta))


def _grow(mask: np.ndarray, label: int) -> np.ndarray:
    """One more slice of ``label`` under its last one (a brush stroke at its edge)."""
    out = mask.copy()
    z = np.flatnonzero((mask == label).any(axis=(1, 2)))[-1]
    target = min(z + 1, mask.shape[0] - 1)
    out[target][(mask[z] == label) & (mask[target] == 0)] = label
    return out


def _shrink(mask: np.ndarray, label: int) -> np.ndarray:
    """``label`` without its first voxel (an eraser touch)."""
    out = mask.copy()
    out.flat[np.flatnonzero(mask == label)[0]] = 0
    return out


def _delete(mask: np.ndarray, label: int) -> np.ndarray:
    out = mask.copy()
    out[out == label] = 0
    return out


def _draw(mask: np.ndarray, label: int) -> np.ndarray:
    out = mask.copy()
    out[FREE_CORNER] = label
    return out


EDITS = {"grow": _grow, "shrink": _shrink, "delete": _delete, "draw": _draw}


@dataclass
class Session:
    """One clinician in one tab: the study, and a history of what can be undone."""

    study_id: int
    user: Any
    done: list[tuple[Any, ...]] = field(default_factory=list)
    undone: list[tuple[Any, ...]] = field(default_factory=list)

    def decisions(self) -> dict[int, str]:
        rows = Lesion.objects.filter(study_id=self.study_id)
        return dict(rows.values_list("label", "decision"))

    def mask(self) -> np.ndarray:
        return services.current_mask(Study.objects.get(pk=self.study_id)).copy()

    def decide(self, label: int, decision: str) -> None:
        lesion = Lesion.objects.get(study_id=self.study_id, label=label)
        services.lesion_decide(
            study_id=self.study_id, lesion_id=lesion.pk, user=self.user, decision=decision
        )

    def save(self, mask: np.ndarray) -> None:
        revision = Study.objects.get(pk=self.study_id).revision_number
        services.mask_save(
            study_id=self.study_id,
            user=self.user,
            body=mask_bytes(mask),
            gzipped=True,
            base_revision=revision,
        )

    def apply(self, step: tuple[Any, ...]) -> tuple[Any, ...]:
        """Play one step; returns what undoing it needs."""
        kind = step[0]
        if kind == "decide":
            _, label, decision = step
            before = self.decisions()[label]
            self.decide(label, decision)
            return ("decide", label, _as_request(before), decision)
        if kind in EDITS:
            _, label = step
            before_mask, before = self.mask(), self.decisions()
            self.save(EDITS[kind](before_mask, label))
            return ("mask", before_mask, self.mask(), before)
        if kind == "approve":
            services.study_approve(study_id=self.study_id, user=self.user, training_eligible=False)
            return ("approve",)
        if kind == "reopen":
            services.study_reopen(study_id=self.study_id, user=self.user)
            return ("reopen",)
        raise AssertionError(f"unknown step {step}")

    def revert(self, record: tuple[Any, ...], *, forward: bool) -> None:
        """Undo (``forward=False``) or redo a recorded step, as the viewer does."""
        if record[0] == "decide":
            _, label, before, after = record
            self.decide(label, after if forward else before)
            return
        _, before_mask, after_mask, before = record
        target = after_mask if forward else before_mask
        if not forward:
            now = self.decisions()
            for label, decision in before.items():
                if now.get(label) == "rejected" and decision != "rejected":
                    self.decide(label, _as_request(decision))
        self.save(target)


def _as_request(decision: str) -> str:
    """What the viewer sends to restore ``decision`` (kept ones map back by contour)."""
    return "accepted" if decision in ("accepted", "edited", "added") else decision


def play(session: Session, step: tuple[Any, ...]) -> None:
    if step[0] == "undo":
        record = session.done.pop()
        session.revert(record, forward=False)
        session.undone.append(record)
    elif step[0] == "redo":
        record = session.undone.pop()
        session.revert(record, forward=True)
        session.done.append(record)
    else:
        session.done.append(session.apply(step))
        session.undone.clear()


# (name, steps, labels in the export, final decisions). A step that the server must
# refuse is written ("refused", code, step): nothing may change when it is refused.
PATHS = [
    ("accept all", [("decide", 1, "accepted"), ("decide", 2, "accepted"), ("decide", 3, "accepted")], {1, 2, 3}, {1: "accepted", 2: "accepted", 3: "accepted"}),
    ("reject one", [("decide", 1, "accepted"), ("decide", 2, "rejected"), ("decide", 3, "accepted")], {1, 3}, {1: "accepted", 2: "rejected", 3: "accepted"}),
    ("the reported bug: paint into a rejected lesion", [("decide", 1, "accepted"), ("decide", 2, "rejected"), ("refused", "lesion_rejected", ("grow", 2)), ("decide", 3, "accepted")], {1, 3}, {1: "accepted", 2: "rejected", 3: "accepted"}),
    ("erase from a rejected lesion", [("decide", 2, "rejected"), ("refused", "lesion_rejected", ("shrink", 2)), ("refused", "lesion_rejected", ("delete", 2)), ("decide", 1, "accepted"), ("decide", 3, "accepted")], {1, 3}, {1: "accepted", 2: "rejected", 3: "accepted"}),
    ("edit then reject", [("grow", 3), ("decide", 3, "rejected"), ("decide", 1, "accepted"), ("decide", 2, "accepted")], {1, 2}, {1: "accepted", 2: "accepted", 3: "rejected"}),
    ("edit, reject, accept again stays edited", [("grow", 3), ("decide", 3, "rejected"), ("decide", 3, "accepted"), ("decide", 1, "rejected"), ("decide", 2, "accepted")], {2, 3}, {1: "rejected", 2: "accepted", 3: "edited"}),
    ("undo a reject", [("decide", 1, "accepted"), ("decide", 2, "accepted"), ("decide", 3, "rejected"), ("undo",), ("decide", 3, "accepted")], {1, 2, 3}, {1: "accepted", 2: "accepted", 3: "accepted"}),
    ("undo an accept back to pending, then reject", [("decide", 1, "accepted"), ("undo",), ("decide", 1, "rejected"), ("decide", 2, "accepted"), ("decide", 3, "accepted")], {2, 3}, {1: "rejected", 2: "accepted", 3: "accepted"}),
    ("undo and redo a reject", [("decide", 1, "accepted"), ("decide", 2, "accepted"), ("decide", 3, "rejected"), ("undo",), ("redo",)], {1, 2}, {1: "accepted", 2: "accepted", 3: "rejected"}),
    ("delete erases and rejects", [("decide", 1, "accepted"), ("delete", 2), ("decide", 3, "accepted")], {1, 3}, {1: "accepted", 2: "rejected", 3: "accepted"}),
    ("undo a delete restores the lesion, kept", [("decide", 2, "accepted"), ("delete", 2), ("undo",), ("decide", 1, "accepted"), ("decide", 3, "accepted")], {1, 2, 3}, {1: "accepted", 2: "edited", 3: "accepted"}),
    ("undo a delete of an edited lesion", [("grow", 3), ("delete", 3), ("undo",), ("decide", 1, "accepted"), ("decide", 2, "accepted")], {1, 2, 3}, {1: "accepted", 2: "accepted", 3: "edited"}),
    ("draw a missed lesion", [("draw", 9), ("decide", 1, "accepted"), ("decide", 2, "rejected"), ("decide", 3, "accepted")], {1, 3, 9}, {1: "accepted", 2: "rejected", 3: "accepted", 9: "added"}),
    ("draw, reject it, accept it again", [("draw", 9), ("decide", 9, "rejected"), ("decide", 9, "accepted"), ("decide", 1, "accepted"), ("decide", 2, "accepted"), ("decide", 3, "accepted")], {1, 2, 3, 9}, {1: "accepted", 2: "accepted", 3: "accepted", 9: "added"}),
    ("undo a drawn lesion", [("draw", 9), ("undo",), ("decide", 1, "accepted"), ("decide", 2, "accepted"), ("decide", 3, "accepted")], {1, 2, 3}, {1: "accepted", 2: "accepted", 3: "accepted", 9: "rejected"}),
    ("reopen and reject", [("decide", 1, "accepted"), ("decide", 2, "accepted"), ("decide", 3, "accepted"), ("approve",), ("reopen",), ("decide", 2, "rejected"), ("refused", "lesion_rejected", ("grow", 2))], {1, 3}, {1: "accepted", 2: "rejected", 3: "accepted"}),
    ("reopen and keep a rejected one", [("decide", 1, "rejected"), ("decide", 2, "accepted"), ("decide", 3, "accepted"), ("approve",), ("reopen",), ("decide", 1, "accepted"), ("grow", 1)], {1, 2, 3}, {1: "edited", 2: "accepted", 3: "accepted"}),
]  # fmt: skip


def exported_labels(study_id: int, user: Any) -> set[int]:
    data, _name = services.study_export_nifti(study_id=study_id, user=user)
    path = storage.study_dir(study_id) / "export-check.nii.gz"
    path.write_bytes(data)
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    return {int(v) for v in np.unique(arr) if v}


@pytest.mark.parametrize(("name", "steps", "exported", "final"), PATHS, ids=[p[0] for p in PATHS])
def test_export_holds_exactly_the_kept_lesions(
    cast: Any, name: str, steps: list[Any], exported: set[int], final: dict[int, str]
) -> None:
    study = make_study()
    _with_ct_reference(study)
    session = Session(study_id=study.pk, user=cast.clinician)
    for step in steps:
        if step[0] != "refused":
            play(session, step)
            continue
        _, code, inner = step
        revision, decisions = Study.objects.get(pk=study.pk).revision_number, session.decisions()
        with pytest.raises(DomainError) as refused:
            play(session, inner)
        assert refused.value.code == code and refused.value.status_code == 409
        assert Study.objects.get(pk=study.pk).revision_number == revision
        assert session.decisions() == decisions
    assert session.decisions() == final
    if Study.objects.get(pk=study.pk).status != Study.Status.APPROVED:
        services.study_approve(study_id=study.pk, user=cast.clinician, training_eligible=False)
    assert exported_labels(study.pk, cast.clinician) == exported
    approval = study.approvals.get(superseded=False)
    assert set(approval.lesion_labels) == exported
    truth = np.load(storage.absolute(approval.snapshot_dir) / "ground_truth.npy")
    kept_voxels = np.isin(services.current_mask(Study.objects.get(pk=study.pk)), sorted(exported))
    assert np.array_equal(truth.astype(bool), kept_voxels)


def test_the_refusal_names_the_lesion_and_keeps_the_mask(api: Any, cast: Any) -> None:
    study = make_study()
    session = Session(study_id=study.pk, user=cast.clinician)
    session.decide(2, "rejected")
    before = session.mask()
    mask = _grow(_grow(before, 3), 2)  # one good edit, one into the rejected lesion
    response = api(cast.clinician).put(
        f"/api/studies/{study.pk}/mask/",
        data=mask_bytes(mask),
        content_type="application/octet-stream",
        HTTP_CONTENT_ENCODING="gzip",
        HTTP_IF_MATCH='"1"',
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "lesion_rejected" and body["labels"] == [2]
    assert "Lesion 2 is rejected" in body["detail"] and "accept it" in body["detail"]
    assert np.array_equal(session.mask(), before)
    assert session.decisions() == {1: "pending", 2: "rejected", 3: "pending"}
    assert not study.revisions.filter(number=2).exists()


def _accept_all(session: Session) -> None:
    for label, decision in session.decisions().items():
        if decision == "pending":
            session.decide(label, "accepted")


# (case, steps before approving, what the page shows besides 1-3 accepted (None = the
# page sends no decisions), code)
APPROVALS = [
    ("kept lesion erased, accepted again, not saved", [("delete", 2), ("decide", 2, "accepted")], None, "empty_lesions"),
    ("the page shows a decision changed elsewhere", [], {2: "rejected"}, "decisions_changed"),
    ("the page misses a lesion drawn elsewhere", [("draw", 9)], {}, "decisions_changed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "steps", "seen", "code"), APPROVALS, ids=[a[0] for a in APPROVALS]
)
def test_approval_refuses_what_the_clinician_did_not_see(
    cast: Any, case: str, steps: list[Any], seen: dict[int, str] | None, code: str
) -> None:
    study = make_study()
    session = Session(study_id=study.pk, user=cast.clinician)
    _accept_all(session)
    for step in steps:
        play(session, step)
    _accept_all(session)
    expected = None
    if seen is not None:
        ids = dict(Lesion.objects.filter(study=study).values_list("label", "id"))
        shown = {label: "accepted" for label in (1, 2, 3)}  # the page's view
        shown.update(seen)
        expected = {ids[label]: decision for label, decision in shown.items()}
    with pytest.raises(DomainError) as refused:
        services.study_approve(
            study_id=study.pk,
            user=cast.clinician,
            training_eligible=False,
            expected_decisions=expected,
        )
    assert refused.value.code == code and refused.value.status_code == 409
    assert Study.objects.get(pk=study.pk).status == Study.Status.IN_REVIEW
    assert not study.approvals.exists()
