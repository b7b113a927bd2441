"""Login lock-out (django-axes, configured in settings ``AXES_*``): what a locked-out
client is told.

After ``AXES_FAILURE_LIMIT`` failed logins for one username, or from one IP address,
within ``AXES_COOLOFF_TIME``, every login with that username or from that address is
refused until the cool-off ends (or an admin runs ``manage.py axes_reset_username NAME`` /
``axes_reset_ip ADDRESS``). The API answers 429 ``{detail, code: "locked_out"}`` with
``Retry-After``; the login page shows the same sentence.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

LOCKED_OUT_CODE = "locked_out"
LOCKED_OUT_STATUS = 429


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind ``LESIONLOOP_PROXY_COUNT`` proxies
    the address the outermost one saw (counted from the right of X-Forwarded-For, the
    part a client cannot forge)."""
    remote = str(request.META.get("REMOTE_ADDR", ""))
    count = settings.LESIONLOOP_PROXY_COUNT
    if not count:
        return remote
    hops = [h.strip() for h in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    hops = [h for h in hops if h]
    return hops[-count] if len(hops) >= count else remote


def cooloff_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def lockout_message() -> str:
    minutes = max(1, round(cooloff_seconds() / 60))
    return (
        "Too many failed logins for this account or from this address: logins are "
        f"refused for {minutes} minutes. Ask an admin if you need access sooner."
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: JSON for the API, the login page for browsers."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": lockout_message(), "code": LOCKED_OUT_CODE},
            status=LOCKED_OUT_STATUS,
            headers={"Retry-After": str(cooloff_seconds())},
        )
    from django.contrib.auth.forms import AuthenticationForm

    context = {"form": AuthenticationForm(request), "locked_out": lockout_message()}
    response = render(request, "registration/login.html", context, status=LOCKED_OUT_STATUS)
    response["Retry-After"] = str(cooloff_seconds())
    return response
