"""The VGG-16 loss network: taps, equality with torchvision, truncation, weight resolution."""
from __future__ import annotations

import pytest
import torch
import torchvision

from perceptual_utils.vgg import weights as weights_mod
from perceptual_utils.config import ENV_WEIGHTS
from perceptual_utils.vgg.network import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VGG16_LAYERS,
    VGG16_RELU_INDEX,
    LossNetwork,
    min_input_size,
)
from perceptual_utils.vgg.weights import WeightsNotFoundError, load_vgg16_features_state, resolve_weights

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

@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No env var, and project/torchvision-cache paths pointing into an empty tmp folder."""
    monkeypatch.delenv(ENV_WEIGHTS, raising=False)
    project = tmp_path / "project" / "vgg16_features.safetensors"
    cache = tmp_path / "hub" / "vgg16-397923af.pth"
    monkeypatch.setattr(weights_mod, "project_weights_path", lambda: project)
    monkeypatch.setattr(weights_mod, "torchvision_cache_path", lambda: cache)
    return project, cache


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_resolution_order(isolated, monkeypatch, tmp_path):
    project, cache = isolated
    explicit, env = _touch(tmp_path / "a.safetensors"), _touch(tmp_path / "b.safetensors")
    _touch(project)
    _touch(cache)
    monkeypatch.setenv(ENV_WEIGHTS, str(env))
    assert resolve_weights(explicit, download=False) == explicit
    assert resolve_weights(download=False) == env
    monkeypatch.delenv(ENV_WEIGHTS)
    assert resolve_weights(download=False) == project
    project.unlink()
    assert resolve_weights(download=False) == cache


def test_missing_explicit_or_env_file_is_an_error(isolated, monkeypatch, tmp_path):
    _touch(isolated[0])  # a project file exists, but an explicit request must not fall through to it
    with pytest.raises(WeightsNotFoundError, match="argument does not exist.*nope.safetensors"):
        resolve_weights(tmp_path / "nope.safetensors", download=False)
    monkeypatch.setenv(ENV_WEIGHTS, str(tmp_path / "gone.safetensors"))
    with pytest.raises(WeightsNotFoundError, match=f"\\${ENV_WEIGHTS}.*gone.safetensors"):
        resolve_weights(download=False)


def test_nothing_found_says_where_it_looked_and_how_to_fix(isolated):
    with pytest.raises(WeightsNotFoundError) as info:
        resolve_weights(download=False)
    message = str(info.value)
    assert str(isolated[0]) in message and str(isolated[1]) in message
    assert ENV_WEIGHTS in message and "fetch-weights" in message


def test_torchvision_pth_read_with_weights_only(tmp_path):
    shared = load_vgg16_features_state(resolve_weights(download=False))
    state = {f"features.{k}": v for k, v in shared.items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a full torchvision state dict has these too
    pth = tmp_path / "vgg16-full.pth"
    torch.save(state, pth)
    net = LossNetwork(["relu1_2"], weights=pth)
    torch.testing.assert_close(net.features[2].weight, shared["2.weight"])


class NotATensor:
    """Pickled into a .pth: ``weights_only=True`` must refuse to rebuild it."""


def test_pth_with_arbitrary_objects_is_refused(tmp_path):
    bad = tmp_path / "evil.pth"
    torch.save({"features.0.weight": NotATensor()}, bad)
    with pytest.raises(ValueError, match="evil.pth: not a readable weights file"):
        load_vgg16_features_state(bad)


def test_file_without_vgg_keys_is_rejected(tmp_path):
    from safetensors.torch import save_file

    p = tmp_path / "other.safetensors"
    save_file({"encoder.weight": torch.zeros(2)}, str(p))
    with pytest.raises(ValueError, match="does not hold VGG-16"):
        load_vgg16_features_state(p)
