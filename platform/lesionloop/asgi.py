"""ASGI entry point. Run from the repository root with platform/ on the path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
for _p in (str(_ROOT / "platform"), str(_ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lesionloop.settings.production")

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
