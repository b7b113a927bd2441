from __future__ import annotations

import pytest
import torch

from ml.networks import NETWORK_PRESETS, DeepMedic, UNet3D, build, network_kwargs

torch.set_num_threads(2)


@pytest.mark.parametrize(
    "shape", [(1, 2, 8, 32, 32), (2, 2, 3, 17, 23), (1, 2, 2, 5, 9), (1, 2, 9, 48, 16)]
)
def test_unet_output_shape(shape):
    net = build("unet", "lite").eval()
    with torch.no_grad():
        out = net(torch.randn(shape))
    assert out.shape == (shape[0], 1, *shape[2:])


@pytest.mark.parametrize("shape", [(1, 2, 5, 16, 16), (2, 2, 3, 11, 7), (1, 2, 1, 4, 13)])
def test_deepmedic_output_shape(shape):
    net = build("deepmedic", "lite").eval()
    with torch.no_grad():
        out = net(torch.randn(shape))
    assert out.shape == (shape[0], 2, *shape[2:])


def test_paper_preset_topology():
    unet = build("unet", "paper")
    assert isinstance(unet, UNet3D) and unet.features == (32, 64, 128, 256, 512)
    pool = unet.pool
    assert pool.kernel_size == (1, 2, 2) and pool.stride == (1, 2, 2)
    convs = [
        m for m in unet.modules() if isinstance(m, torch.nn.Conv3d) and m.kernel_size != (1, 1, 1)
    ]
    assert all(c.kernel_size == (3, 3, 3) for c in convs)
    assert unet.encoders[0][0].in_channels == 2
    dm = build("deepmedic", "paper")
    assert isinstance(dm, DeepMedic) and dm.factors == (3, 5)
    for path in [dm.normal, *dm.low]:
        widths = [m.out_channels for m in path if isinstance(m, torch.nn.Conv3d)]
        assert widths == [30, 30, 40, 40, 40, 40, 50, 50]
    fc = [m.out_channels for m in dm.fc if isinstance(m, torch.nn.Conv3d)]
    assert fc == [250, 250, 250] and dm.classifier.out_channels == 2


def test_deepmedic_is_translation_consistent_in_z():
    # Dense inference tiles along z: a tile with z_halo context equals the full pass.
    net = build("deepmedic", "lite").eval()
    x = torch.randn(1, 2, 30, 20, 20)
    with torch.no_grad():
        full = net(x)
        tile = net(x[:, :, 4:26])
    h = net.z_halo
    assert torch.allclose(full[:, :, 4 + h : 26 - h], tile[:, :, h:-h], atol=1e-5)


def test_build_rejects_unknown_names():
    with pytest.raises(ValueError):
        build("vnet", "lite")
    with pytest.raises(ValueError):
        build("unet", "huge")
    with pytest.raises(ValueError):
        UNet3D(features=(8,))
    with pytest.raises(ValueError):
        build("unet", "lite")(torch.zeros(1, 3, 8, 16, 16))
    assert set(NETWORK_PRESETS) == {"paper", "lite"}
    assert network_kwargs("unet", "lite")["features"] == (8, 16, 32, 64, 128)
