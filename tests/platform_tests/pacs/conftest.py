"""Fixtures of the DICOM network tests (defined in peers.py, shared with tests/e2e)."""

from __future__ import annotations

from tests.platform_tests.pacs.peers import orthanc, start_listener
from tests.platform_tests.studies.fixtures import _storage, synthetic_case

__all__ = ["_storage", "orthanc", "start_listener", "synthetic_case"]
