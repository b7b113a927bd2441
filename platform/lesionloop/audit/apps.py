from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "lesionloop.audit"
    label = "audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth.signals import user_login_failed

        from .signals import on_user_locked_out, on_user_login_failed

        user_login_failed.connect(
            on_user_login_failed, dispatch_uid="lesionloop-audit-login-failed"
        )
        user_locked_out.connect(on_user_locked_out, dispatch_uid="lesionloop-audit-locked-out")
