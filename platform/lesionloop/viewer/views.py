"""Pages of the browser viewer. The server enforces roles on the API anyway."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def worklist(request: HttpRequest) -> HttpResponse:
    return render(request, "viewer/worklist.html")
