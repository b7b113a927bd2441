"""Training of the ensemble's networks (``train_ensemble``) and their configs."""

from __future__ import annotations

from ml.training.config import DeepMedicTrainConfig, EnsembleTrainConfig, UNetTrainConfig
from ml.training.data import Case, load_case
from ml.training.ensemble import train_ensemble, write_manifest
from ml.training.trainer import TrainingCancelled, train_network, validate_network

__all__ = [
    "Case",
    "DeepMedicTrainConfig",
    "EnsembleTrainConfig",
    "TrainingCancelled",
    "UNetTrainConfig",
    "load_case",
    "train_ensemble",
    "train_network",
    "validate_network",
    "write_manifest",
]
