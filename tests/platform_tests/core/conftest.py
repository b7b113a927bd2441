from tests.platform_tests.studies.fixtures import _storage, synthetic_case

__all__ = ["_storage", "synthetic_case"]
