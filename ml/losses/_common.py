from __future__ import annotations

import torch


def check_inputs(prob: torch.Tensor, target: torch.Tensor, volume_map: torch.Tensor | None) -> None:
    if prob.ndim != 5 or prob.shape[1] != 1:
        raise ValueError(f"prob must be (B, 1, D, H, W), got {tuple(prob.shape)}")
    if target.shape != prob.shape:
        raise ValueError(f"target shape {tuple(target.shape)} != prob shape {tuple(prob.shape)}")
    if volume_map is not None and volume_map.shape != prob.shape:
        raise ValueError(
            f"volume_map shape {tuple(volume_map.shape)} != prob shape {tuple(prob.shape)}"
        )
