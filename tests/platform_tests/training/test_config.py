"""The training config a platform run uses (lesionloop.training.config)."""

from __future__ import annotations

import pytest

from lesionloop.training.config import GRID_DEFAULTS, training_config


@pytest.mark.parametrize("grid", ["tiny", "lite", "paper"])
def test_platform_config_is_a_valid_ml_config(grid, settings):
    from ml.training import EnsembleTrainConfig

    settings.LESIONLOOP_TRAIN_MAX_MINUTES = 20
    data = training_config(grid=grid, seed=4, overrides={"unet": {"epochs": 3}})
    config = EnsembleTrainConfig.from_dict(data)
    config.validate()
    assert config.seed == 4 and config.unet.epochs == 3
    assert config.unet.loss == "vol_dice_br"
    # Graceful stop at 70% of the supervisor's hard limit.
    assert config.max_minutes == 14.0


def test_lite_defaults_are_the_ml_lite_recipe():
    # The web process must not import torch, so the recipe is repeated here; it must
    # not drift from the one the benchmarks measure (benchmarks/ml_lite_quality.py).
    from ml.training.config import GRID_RECIPES

    assert GRID_DEFAULTS["lite"] == GRID_RECIPES["lite"]
