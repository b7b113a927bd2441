"""DICOM ingest, MR->CT registration, the model grid and intensity pre-processing.

Public entry points: ``prepare_study`` (``ml.imaging.pipeline``), ``ingest``
(``ml.imaging.dicom_io``), ``mask_to_ct_grid`` / ``ct_mask_to_model_grid``
(``ml.imaging.grid``) and ``IngestError`` (``ml.imaging.errors``). Submodules are
imported lazily so that ``from ml.imaging.errors import IngestError`` stays light.
"""

from __future__ import annotations

from ml.imaging.errors import IngestError

__all__ = ["IngestError", "prepare_study"]


def __getattr__(name: str):
    if name == "prepare_study":
        from ml.imaging.pipeline import prepare_study

        return prepare_study
    raise AttributeError(name)
