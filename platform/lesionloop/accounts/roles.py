"""The three roles of LesionLoop, as Django groups.

- clinician: review, edit and approve studies.
- admin: everything a clinician can, plus users, retraining, promotion, rollback.
- auditor: read everything, including the audit trail; change nothing.
A Django superuser counts as an admin.
"""

from __future__ import annotations

from typing import Any

CLINICIAN = "clinician"
ADMIN = "admin"
AUDITOR = "auditor"
ROLES = (CLINICIAN, ADMIN, AUDITOR)


def user_roles(user: Any) -> frozenset[str]:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_lesionloop_roles", None)
    if cached is not None:
        return cached
    roles = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    if user.is_superuser:
        roles.add(ADMIN)
    result = frozenset(roles)
    user._lesionloop_roles = result
    return result


def can_review(user: Any) -> bool:
    """Clinicians and admins edit and approve contours."""
    return bool(user_roles(user) & {CLINICIAN, ADMIN})


def can_manage_models(user: Any) -> bool:
    return ADMIN in user_roles(user)


def can_read(user: Any) -> bool:
    """Every role reads; a user with no role reads nothing."""
    return bool(user_roles(user))


def can_audit(user: Any) -> bool:
    return bool(user_roles(user) & {AUDITOR, ADMIN})
