"""The VGG-16 loss network: taps, equality with torchvision, truncation, frozen weights."""
from __future__ import annotations

import pytest
import torch
import torchvision

from perceptual_utils.vgg.network import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VGG16_LAYERS,
    VGG16_RELU_INDEX,
    LossNetwork,
    min_input_size,
)
from perceptual_utils.vgg.weights import load_vgg16_features_state

CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}


@pytest.fixture(scope="module")
def full_network() -> LossNetwork:
    return LossNetwork(VGG16_LAYERS)


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(0))


def test_all_thirteen_taps_have_the_right_shapes(full_network, image):
    out = full_network(image)
    assert list(out) == list(VGG16_LAYERS)
    for name, feat in out.items():
        block = int(name[4])
        stride = 2 ** (block - 1)
        assert feat.shape == (2, CHANNELS[block], 32 // stride, 48 // stride), name
        assert (feat >= 0).all()  # ReLU outputs


def test_features_equal_a_direct_torchvision_forward(full_network, image):
    # torchvision's own module; built on the meta device so its 100M-parameter classifier is not
    # initialised for nothing, then given the same weights.
    with torch.device("meta"):
        features = torchvision.models.vgg16().features
    features = features.to_empty(device="cpu")
    features.load_state_dict(load_vgg16_features_state(full_network.weights_path))
    features.eval()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = (image - mean) / std
    expected = {}
    with torch.no_grad():
        for index, module in enumerate(features):
            x = module(x)
            for name, relu_index in VGG16_RELU_INDEX.items():
                if relu_index == index:
                    expected[name] = x.clone()
        got = full_network(image)
    for name in VGG16_LAYERS:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-5)


def test_network_is_frozen_and_in_eval_mode(loss_network):
    assert all(not p.requires_grad for p in loss_network.parameters())
    loss_network.train()
    assert not loss_network.training and not loss_network.features.training


def test_truncated_after_the_deepest_requested_layer():
    net = LossNetwork(["relu1_1", "relu2_2"])
    assert len(net.features) == VGG16_RELU_INDEX["relu2_2"] + 1
    out = net(torch.rand(1, 3, 16, 16))
    assert set(out) == {"relu1_1", "relu2_2"}


def test_single_image_without_batch_dimension(loss_network):
    out = loss_network(torch.rand(3, 16, 16))
    assert out["relu1_1"].shape == (1, 64, 16, 16)


def test_too_small_input_and_bad_shapes_raise(full_network):
    assert min_input_size(["relu5_3"]) == 16
    with pytest.raises(ValueError, match="too small.*relu5_3.*16"):
        full_network(torch.rand(1, 3, 8, 64))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        full_network(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="unknown VGG-16 layer 'relu6_1'"):
        LossNetwork(["relu6_1"])


def test_random_weights_differ_from_pretrained(loss_network):
    rand_net = LossNetwork(["relu1_1"], weights="random")
    assert rand_net.weights_path is None
    w = loss_network.features[0].weight
    assert not torch.allclose(rand_net.features[0].weight, w)


# ---- weight resolution ---------------------------------------------------------------------------
