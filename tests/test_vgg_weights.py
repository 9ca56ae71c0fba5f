"""Finding and reading the VGG-16 weights: resolution order, clear errors, tensors only."""
from __future__ import annotations

import pytest
import torch

from perceptual_utils.config import ENV_WEIGHTS
from perceptual_utils.vgg import weights as weights_mod
from perceptual_utils.vgg.network import LossNetwork
from perceptual_utils.vgg.weights import WeightsNotFoundError, load_vgg16_features_state, resolve_weights


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
