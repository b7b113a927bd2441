"""The API token endpoint: DRF's ``ObtainAuthToken`` with the house error shape and the
login lock-out (django-axes sees the attempt because DRF's serializer passes ``request``
to ``authenticate``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.request import Request
from rest_framework.response import Response

from lesionloop.core.exceptions import DomainError

from ..lockout import LOCKED_OUT_CODE, LOCKED_OUT_STATUS, cooloff_seconds, lockout_message
from ..services import token_for


class TokenObtainView(ObtainAuthToken):
    """POST username + password: ``{"token": key}``. 400 ``invalid_credentials``; 429
    ``locked_out`` (with ``Retry-After``) after too many failures for the username or IP."""

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            # Axes flags the request it refused (or the failure that reached the limit).
            if getattr(request, "axes_locked_out", False):
                return Response(
                    {"detail": lockout_message(), "code": LOCKED_OUT_CODE},
                    status=LOCKED_OUT_STATUS,
                    headers={"Retry-After": str(cooloff_seconds())},
                )
            raise DomainError(
                "Unable to log in with the given username and password.",
                code="invalid_credentials",
            )
        user = serializer.validated_data["user"]
        key = token_for(user=user)
        # A token login is a login: axes resets the failure count (AXES_RESET_ON_SUCCESS)
        # and Django stamps last_login, as for the session login.
        user_logged_in.send(sender=type(user), request=request, user=user)
        return Response({"token": key})
