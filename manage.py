#!/usr/bin/env python
"""Django's command-line utility for LesionLoop.

``platform/`` is a source root, not a package: it goes on ``sys.path`` so that
``lesionloop`` imports, while ``import platform`` still gives the standard library.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def main() -> None:
    sys.path.insert(0, str(ROOT / "platform"))
    if str(ROOT) not in sys.path:
        sys.path.insert(1, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lesionloop.settings.dev")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
