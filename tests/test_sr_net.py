"""The super-resolution network: shapes, paper sizes, arguments, config round trip."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from perceptual_utils.model_io import ModelFileError, load_model, save_model
from perceptual_utils.sr.net import SuperResolutionNet


# ----------------------------------------------------------------------------- network

@pytest.mark.parametrize("scale, size", [(4, (72, 72)), (8, (36, 36)), (4, (17, 23)), (8, (9, 5)), (2, (30, 11))])
def test_output_shape(scale, size):
    net = SuperResolutionNet(scale=scale, channels=8, num_residual=1).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, *size))
    assert out.shape == (2, 3, size[0] * scale, size[1] * scale)
    assert out.min() >= 0 and out.max() <= 1  # scaled tanh


def test_paper_sizes_with_default_architecture():
    """The supplementary's numbers: 72x72 -> 288x288 at x4, 36x36 -> 288x288 at x8, 64-channel maps."""
    for scale, side in ((4, 72), (8, 36)):
        net = SuperResolutionNet(scale=scale).eval()
        assert len(net.up) == int(np.log2(scale)) and len(net.residual) == 4
        with torch.no_grad():
            hidden = net.residual(net.input(torch.rand(1, 3, side, side)))
            assert hidden.shape == (1, 64, side, side)  # residual blocks keep the size
            assert net(torch.rand(1, 3, side, side)).shape == (1, 3, 288, 288)


@pytest.mark.parametrize("bad", [{"scale": 3}, {"scale": 16}, {"scale": 2.5}, {"norm": "group"},
                                 {"upsample": "pixelshuffle"}, {"padding": "none"}])
def test_invalid_arguments(bad):
    with pytest.raises(ValueError):
        SuperResolutionNet(**bad)


def test_wrong_input_shape_is_a_clear_error():
    net = SuperResolutionNet(scale=4, channels=4, num_residual=0)
    with pytest.raises(ValueError, match="RGB"):
        net(torch.rand(1, 1, 16, 16))
    with pytest.raises(ValueError, match="too small"):
        net(torch.rand(1, 3, 3, 16))


def test_config_round_trip(tmp_path):
    net = SuperResolutionNet(scale=8, channels=8, num_residual=2, norm="instance", upsample="nearest").eval()
    path = save_model(net, tmp_path / "sr.safetensors", training={"loss": "feature"})
    loaded = load_model(path, kind="super_resolution")
    assert loaded.config == net.config and isinstance(loaded, SuperResolutionNet)
    assert loaded.training_info == {"loss": "feature"}
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        assert torch.equal(net(x), loaded(x))
    with pytest.raises(ModelFileError, match="super_resolution"):
        load_model(path, kind="style_transfer")


# ----------------------------------------------------------------------------- degradation


# ----------------------------------------------------------------------------- upscaling
