"""Synthetic CT + contrast-T1 MR studies of a head with brain metastases, as real DICOM."""

from __future__ import annotations

from ml.synthetic.generator import ACQUISITIONS, generate_study

__all__ = ["ACQUISITIONS", "generate_study"]
