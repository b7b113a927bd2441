"""Training-time augmentation (docs/ML.md "Augmentation"): one module per transform
family (``intensity``, ``resolution``, ``spatial``), ``AugmentConfig`` and
``augment_sample`` (the fixed-order pipeline the training strategies call)."""

from ml.augment.config import AugmentConfig
from ml.augment.pipeline import augment_sample

__all__ = ["AugmentConfig", "augment_sample"]
