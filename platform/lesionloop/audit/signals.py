"""Failed logins go to the audit trail (connected in AuditConfig.ready)."""

from __future__ import annotations

from typing import Any


def on_user_login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    from .services import audit_record

    username = str(credentials.get("username", ""))[:150]
    ip = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    audit_record(event_type="login_failed", actor_label=username, username=username, ip=ip)
