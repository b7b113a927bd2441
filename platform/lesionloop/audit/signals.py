"""Failed logins and lock-outs go to the audit trail (connected in AuditConfig.ready)."""

from __future__ import annotations

from typing import Any


def on_user_login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    from lesionloop.accounts.lockout import client_ip

    from .services import audit_record

    username = str(credentials.get("username", ""))[:150]
    ip = client_ip(request) if request is not None else ""
    audit_record(event_type="login_failed", actor_label=username, username=username, ip=ip)


def on_user_locked_out(
    sender: Any, request: Any = None, username: Any = None, ip_address: Any = None, **kwargs: Any
) -> None:
    """django-axes' ``user_locked_out``: the failure that reached the limit, and every
    attempt refused while locked out (the cool-off restarts on each)."""
    from .services import audit_record

    name = str(username or "")[:150]
    path = request.path if request is not None else ""
    audit_record(
        event_type="login_locked_out",
        actor_label=name,
        username=name,
        ip=str(ip_address or ""),
        path=path,
    )
