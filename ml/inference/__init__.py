"""Ensemble inference: ``EnsemblePredictor.from_dir(model_dir).predict(model_input, spacing_mm)``."""

from __future__ import annotations

from ml.inference.predictor import EnsemblePredictor, LesionSummary, Prediction, summarise_lesions
from ml.inference.sliding import head_bbox, predict_deepmedic, predict_unet

__all__ = [
    "EnsemblePredictor",
    "LesionSummary",
    "Prediction",
    "head_bbox",
    "predict_deepmedic",
    "predict_unet",
    "summarise_lesions",
]
