"""The instructor panel's frames: the normalised objective, the on-disk cache, its key."""
from __future__ import annotations

import pytest
import torch

from perceptual_utils.teaching.frames import FrameSet, cache_key, frame_iterations, reconstruction_frames

LAYERS = ["relu1_2", "relu2_2"]
SHARES = [0.0, 1.0]


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return torch.rand(3, 16, 16, generator=g)


@pytest.fixture(scope="module")
def frames(image, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    fs = reconstruction_frames(image, layers=LAYERS, style_shares=SHARES, iterations=4, n_frames=3,
                               cache_dir=cache, progress=False)
    return fs, cache


def test_frame_iterations_are_dense_early():
    ks = frame_iterations(100, 5)
    assert ks[0] == 0 and ks[-1] == 100 and ks == sorted(ks)
    assert ks[1] - ks[0] < ks[-1] - ks[-2]
    with pytest.raises(ValueError):
        frame_iterations(0, 5)


def test_cache_round_trip(frames, image):
    fs, cache = frames
    assert fs.path is not None and fs.path.parent == cache and fs.path.suffix == ".safetensors"
    assert fs.iterations == [0, 1, 4]
    assert set(fs.frames) == {(layer, s) for layer in LAYERS for s in SHARES}
    loaded = FrameSet.load(fs.path)
    assert loaded.layers == fs.layers and loaded.shares == fs.shares and loaded.iterations == fs.iterations
    for key, stack in fs.frames.items():
        assert torch.equal(loaded.frames[key], stack)
    assert torch.allclose(loaded.original, image, atol=0.5 / 255 + 1e-6)
    # The cache is used: a second call returns the stored file's frames without optimising.
    again = reconstruction_frames(image, layers=LAYERS, style_shares=SHARES, iterations=4, n_frames=3,
                                  cache_dir=cache, progress=False)
    assert again.path == fs.path
    assert all(torch.equal(again.frames[k], fs.frames[k]) for k in fs.frames)


def test_cache_key_depends_on_image_and_settings(image):
    settings = {"iterations": 4}
    assert cache_key(image, settings) == cache_key(image.clone(), dict(settings))
    assert cache_key(image, settings) != cache_key(image, {"iterations": 5})
    assert cache_key(image, settings) != cache_key(image.flip(-1), settings)


def test_cache_key_changes_with_the_algorithm(image, monkeypatch):
    from perceptual_utils.teaching import frames as widgets

    before = cache_key(image, {"iterations": 4})
    monkeypatch.setattr(widgets, "ALGORITHM_VERSION", widgets.ALGORITHM_VERSION + 1)
    assert cache_key(image, {"iterations": 4}) != before


def test_corrupt_cache_file_is_recomputed(image, tmp_path):
    fs = reconstruction_frames(image, layers=["relu1_2"], style_shares=[0.0], iterations=2, n_frames=2,
                               cache_dir=tmp_path, progress=False)
    fs.path.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="frame cache"):
        FrameSet.load(fs.path)
    with pytest.warns(UserWarning, match="recomputing"):
        again = reconstruction_frames(image, layers=["relu1_2"], style_shares=[0.0], iterations=2, n_frames=2,
                                      cache_dir=tmp_path, progress=False)
    assert FrameSet.load(again.path).iterations == [0, 2]


def test_frames_start_from_noise_and_move_toward_the_image(frames, image):
    fs, _ = frames
    first, last = fs.frame("relu1_2", 0.0, 0), fs.frame("relu1_2", 0.0, 4)
    assert (last - image).pow(2).mean() < (first - image).pow(2).mean()
    with pytest.raises(KeyError, match="no frame at iteration"):
        fs.frame("relu1_2", 0.0, 3)


def test_panel_uses_adam_only_for_a_first_block_gram_term():
    from perceptual_utils.teaching.frames import panel_optimizer

    assert panel_optimizer(0.0) == "lbfgs" and panel_optimizer(0.5) == "adam" and panel_optimizer(1.0) == "adam"
    assert panel_optimizer(1.0, layer="relu3_3") == "lbfgs" and panel_optimizer(0.5, layer="relu2_2") == "lbfgs"
    assert panel_optimizer(1.0, "lbfgs") == "lbfgs"


def test_reconstruction_frames_reports_each_run(image):
    calls = []
    reconstruction_frames(image, layers=["relu1_2"], style_shares=[0.0, 1.0], iterations=2, n_frames=2,
                          cache_dir=None, progress=False, on_progress=lambda d, t, w: calls.append((d, t)))
    assert calls == [(0, 2), (1, 2), (2, 2)]
