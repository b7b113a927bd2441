"""Shared fixtures of the end-to-end tests.

Browser fixtures (``browser_chromium``, ``browser_login``) live in browser_helpers.py and
start only when a test asks for them.
"""

from __future__ import annotations

from tests.e2e.browser_helpers import browser_chromium, browser_login  # noqa: F401
