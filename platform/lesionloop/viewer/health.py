"""``GET /healthz`` for load balancers and container health checks.

200 with every check when all pass, 503 naming the failing ones otherwise::

    {"status": "ok" | "failing", "failing": ["broker"],
     "checks": {"database": {"ok": true, "detail": "postgresql reachable", "ms": 0.8}, ...}}

Served by a middleware placed first in ``MIDDLEWARE``: a load balancer calls it over
plain HTTP, by IP address, without a session, so it must answer before the HTTPS
redirect, the ``ALLOWED_HOSTS`` check and authentication. It reveals no data: only which
dependency fails and why. The checks live in the layer that owns them (``core.health``
for the plumbing, ``registry.health`` for the active model); this table puts them
together at the top layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

from django.http import HttpRequest, HttpResponse, JsonResponse

from lesionloop.core.health import Check, broker_check, database_check, health_run, storage_check
from lesionloop.registry.health import active_model_check

PATHS = {"/healthz", "/healthz/"}


def health_checks() -> dict[str, Check]:
    """Every check by name, in the order they run (looked up at call time: tests patch)."""
    return {
        "database": database_check,
        "broker": broker_check,
        "storage": storage_check,
        "active_model": active_model_check,
    }


def healthz(request: HttpRequest) -> HttpResponse:
    if request.method not in {"GET", "HEAD"}:
        return JsonResponse(
            {"detail": "Use GET /healthz.", "code": "method_not_allowed"}, status=405
        )
    ok, results = health_run(health_checks())
    body = {
        "status": "ok" if ok else "failing",
        "failing": [name for name, r in results.items() if not r.ok],
        "checks": {name: {**asdict(r), "ms": round(r.ms, 1)} for name, r in results.items()},
    }
    response = JsonResponse(body, status=200 if ok else 503)
    response["Cache-Control"] = "no-store"
    return response


class HealthzMiddleware:
    """Answers ``/healthz`` before any other middleware runs; passes everything else on."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info in PATHS:
            return healthz(request)
        return self.get_response(request)
