"""``train-style --init-from nearest`` (style/nearest.py): fine-tune the shipped single-style
network that already scores best on the new painting."""
from __future__ import annotations

import pytest
import torch

from helpers import one_error_line, run_cli, tiny_training_photos
from perceptual_utils import model_io
from perceptual_utils.shipped_models import ENV_MODELS
from perceptual_utils.style.nearest import nearest_shipped_network
from perceptual_utils.style.net import StyleTransferNet
from perceptual_utils.style.training import STYLE_RECIPES, train_style

TINY = dict(channels=4, num_residual=1, variant="modern")


def _net(seed: int, **options) -> StyleTransferNet:
    torch.manual_seed(seed)
    return StyleTransferNet(**(TINY | options))


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A models folder of three tiny single-style networks, a multi-style one and one of another width."""
    folder = tmp_path / "models"
    for i, name in enumerate(("alpha", "beta", "gamma")):
        model_io.save_model(_net(i), folder / f"{name}.safetensors", training={"style_name": name})
    model_io.save_model(_net(3, num_styles=2), folder / "multi.safetensors", training={"styles": ["a", "b"]})
    model_io.save_model(_net(4, channels=8), folder / "wide.safetensors", training={"style_name": "wide"})
    monkeypatch.setenv(ENV_MODELS, str(folder))
    return folder


def _brightness_loss(target: float):
    """An objective with a known winner: how far the mean output is from ``target``."""
    def loss(net, batch):
        with torch.no_grad():
            return {"total": (net(batch).mean() - target).abs()}
    return loss


def test_nearest_is_the_lowest_objective_among_networks_that_fit(shipped):
    batch = torch.rand(2, 3, 24, 24)
    loss = _brightness_loss(0.5)
    name, scores = nearest_shipped_network(_net(0).config, loss, batch)
    assert set(scores) == {"alpha", "beta", "gamma"}  # the multi-style and the wider network do not fit
    expected = {n: float(loss(model_io.load_model(shipped / f"{n}.safetensors"), batch)["total"]) for n in scores}
    assert scores == pytest.approx(expected, abs=1e-4)
    assert name == min(expected, key=expected.__getitem__)
    # another objective, another winner: the choice follows the scores, not the file order
    far = {n: float(_brightness_loss(5.0)(model_io.load_model(shipped / f"{n}.safetensors"), batch)["total"])
           for n in scores}
    assert nearest_shipped_network(_net(0).config, _brightness_loss(5.0), batch)[0] == min(far, key=far.__getitem__)


def test_no_network_of_that_architecture_is_a_clear_error(shipped):
    with pytest.raises(ValueError, match="no shipped single-style network has this architecture"):
        nearest_shipped_network(_net(0, channels=6).config, _brightness_loss(0.5), torch.rand(1, 3, 16, 16))


def test_train_style_starts_from_the_nearest_and_records_why(shipped, shared_data, tmp_path):
    data, preview = tiny_training_photos(shared_data, tmp_path)
    result = train_style(shared_data / "styles" / "udnie.jpg", data, tmp_path / "run", net=dict(TINY), steps=1,
                         init_from="nearest", batch_size=2, image_size=32, recipe="cpu", style_size=48,
                         preview_images=preview, num_workers=0, progress=False, amp=False, device="cpu",
                         memory_format="contiguous", grid_jitter=0)
    info = model_io.load_model(result.model_path).training_info
    scores = info["init_from_scores"]
    assert set(scores) == {"alpha", "beta", "gamma"}
    assert info["init_from"] == min(scores, key=scores.__getitem__)
    chosen = model_io.load_model(shipped / f"{info['init_from']}.safetensors")
    assert info["init_from_digest"] == model_io.tensors_digest(chosen.state_dict())
    assert info["warmup_steps"] > 0  # a fine-tune: the warm-up of --init-from
    assert info["lr"] == STYLE_RECIPES["cpu"]["lr"]  # the recipe's rate: every weight learns


def test_nearest_needs_one_painting(shipped, shared_data, tmp_path):
    data, preview = tiny_training_photos(shared_data, tmp_path)
    styles = [shared_data / "styles" / n for n in ("udnie.jpg", "wave_crop.jpg")]
    with pytest.raises(ValueError, match="one --style painting"):
        train_style(styles, data, tmp_path / "run", net=dict(TINY), steps=1, init_from="nearest", batch_size=2,
                    image_size=32, recipe="cpu", style_size=48, preview_images=preview, num_workers=0,
                    progress=False, amp=False, device="cpu", memory_format="contiguous")


def test_export_over_a_shipped_network_is_refused_before_training(shipped, shared_data, tmp_path, capsys):
    target = shipped / "beta.safetensors"
    before = target.read_bytes()
    argv = ["train-style", "--style", str(shared_data / "styles" / "udnie.jpg"), "--data", str(tmp_path),
            "--out", str(tmp_path / "run"), "--init-from", "nearest", "--steps", "1", "--export", str(target)]
    assert "overwrite" in one_error_line(*run_cli(argv, capsys))
    assert target.read_bytes() == before and not (tmp_path / "run").exists()
