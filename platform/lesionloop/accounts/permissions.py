"""DRF permission classes built on the roles. Reads need any role; writes need more."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission

from .roles import can_audit, can_manage_models, can_read, can_review


class HasRole(BasePermission):
    message = "Your account has no LesionLoop role; ask an admin to assign one."

    def has_permission(self, request: Any, view: Any) -> bool:
        return can_read(request.user)


class ReadAnyRoleWriteReviewer(BasePermission):
    """Any role may read; clinicians and admins may change."""

    message = "Only clinicians and admins can change contours or studies."

    def has_permission(self, request: Any, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return can_read(request.user)
        return can_review(request.user)


class IsReviewer(BasePermission):
    message = "Only clinicians and admins can do this."

    def has_permission(self, request: Any, view: Any) -> bool:
        return can_review(request.user)


class ReadAnyRoleWriteAdmin(BasePermission):
    message = "Only admins can train, promote or roll back models."

    def has_permission(self, request: Any, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return can_read(request.user)
        return can_manage_models(request.user)


class IsAuditorOrAdmin(BasePermission):
    message = "Only auditors and admins can read the audit trail."

    def has_permission(self, request: Any, view: Any) -> bool:
        return can_audit(request.user)
