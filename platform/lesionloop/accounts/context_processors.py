from __future__ import annotations

from typing import Any

from .roles import can_audit, can_manage_models, can_review, user_roles


def roles(request: Any) -> dict[str, Any]:
    user = getattr(request, "user", None)
    return {
        "user_roles": sorted(user_roles(user)),
        "can_review": can_review(user),
        "can_manage_models": can_manage_models(user),
        "can_audit": can_audit(user),
    }
