"""The pieces of fast CPU training outside the training loop's room: the truncated content pass,
bf16 autocast, devices, the in-memory data cache and crop-size schedule, and the modern
super-resolution network that starts at bicubic. (The schedules, budgets and memory layouts are in
``test_training_settings.py`` and ``test_training_planning.py``.)"""
from __future__ import annotations

import pytest
import torch

from perceptual_utils.config import autocast_dtype, cpu_has_native_bf16, resolve_device, ConfigError
from perceptual_utils.training_data import ImageFolderDataset
from perceptual_utils.sr.degradation import bicubic_upsample
from perceptual_utils.images import save_image
from perceptual_utils.vgg.network import STYLE_LAYERS
from perceptual_utils.losses import PerceptualLoss
from perceptual_utils.sr.net import SuperResolutionNet
from perceptual_utils.style.net import StyleTransferNet


# ----------------------------------------------------------------------------- loss network passes

def test_truncated_pass_returns_the_same_features_as_the_full_pass(loss_network):
    x = torch.rand(2, 3, 48, 48)
    full = loss_network(x)
    short = loss_network(x, layers=["relu2_2"])
    assert list(short) == ["relu2_2"]
    assert torch.equal(short["relu2_2"], full["relu2_2"])
    with pytest.raises(ValueError, match="does not tap"):
        PerceptualLoss(style_layers=["relu1_2"], content_layer="relu1_2").loss_network(x, layers=["relu4_3"])


def test_content_target_runs_vgg_only_to_the_content_layer(loss_network):
    """The training loss with the truncated content pass equals the loss computed with a full pass."""
    perceptual = PerceptualLoss(loss_network=loss_network, style_layers=STYLE_LAYERS)
    perceptual.set_style(torch.rand(3, 64, 64))
    photos, output = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    calls = []
    hook = loss_network.features[9].register_forward_hook(lambda *a: calls.append(1))  # pool2, after relu2_2
    try:
        terms = perceptual(output, content=photos)
    finally:
        hook.remove()
    assert len(calls) == 1  # only the output's pass goes beyond relu2_2
    expected = torch.nn.functional.mse_loss(loss_network(output)["relu2_2"], loss_network(photos)["relu2_2"])
    assert torch.allclose(terms["content"], expected, rtol=1e-6)


# ----------------------------------------------------------------------------- precision and devices

def test_autocast_dtype_follows_the_cpu(monkeypatch):
    import perceptual_utils.config as config

    assert autocast_dtype(torch.device("cpu")) == (torch.bfloat16 if cpu_has_native_bf16() else None)
    monkeypatch.setattr(config, "cpu_has_native_bf16", lambda: False)
    assert config.autocast_dtype(torch.device("cpu")) is None


def test_machine_description_says_whether_the_cpu_has_native_bf16(monkeypatch):
    import perceptual_utils.config as config

    monkeypatch.setattr(config, "cpu_has_native_bf16", lambda: True)
    assert config.machine_description(1).endswith(f"CPU with native bf16, 1 threads, torch {torch.__version__}")
    monkeypatch.setattr(config, "cpu_has_native_bf16", lambda: False)
    assert " CPU, 3 threads, " in config.machine_description(3)


def test_bf16_training_loss_stays_within_two_percent_of_fp32(loss_network):
    """Tolerance: bf16 keeps 8 bits of mantissa (relative rounding 0.4%); summed over VGG-16's
    layers the objective of a style-training batch differs from float32 by well under 2%."""
    torch.manual_seed(0)
    perceptual = PerceptualLoss(loss_network=loss_network, style_weight=2.0)
    perceptual.set_style(torch.rand(3, 96, 96))
    net = StyleTransferNet("modern", channels=8, num_residual=1)
    photos = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        fp32 = perceptual(net(photos), content=photos)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = perceptual(net(photos), content=photos)
    for name in ("content", "style", "total"):
        assert abs(float(bf16[name]) - float(fp32[name])) <= 0.02 * abs(float(fp32[name])), name


@pytest.mark.parametrize("bad", ["bogus", "cuda:99"])
def test_bad_devices_are_config_errors(bad):
    if bad.startswith("cuda") and torch.cuda.is_available() and torch.cuda.device_count() > 99:
        pytest.skip("a machine with 100 GPUs")
    with pytest.raises(ConfigError, match="device"):
        resolve_device(bad)
    assert resolve_device("cpu") == torch.device("cpu")


# ----------------------------------------------------------------------------- data

@pytest.fixture()
def folder(tmp_path):
    g = torch.Generator().manual_seed(0)
    for i in range(3):
        save_image(torch.rand(3, 40 + 8 * i, 72, generator=g), tmp_path / f"img{i}.png")
    return tmp_path


def test_crop_size_follows_the_step_schedule(folder):
    ds = ImageFolderDataset(folder, size=32, resize_short=40, size_schedule=[(0, 16), (5, 32)], samples_per_step=2)
    assert ds[0].shape[-1] == 16 and ds[9].shape[-1] == 16 and ds[10].shape[-1] == 32
    with pytest.raises(ValueError, match="size_schedule"):
        ImageFolderDataset(folder, size=32, size_schedule=[(3, 16)])


def test_cache_gives_the_same_crops_as_a_fresh_dataset(folder):
    cached = ImageFolderDataset(folder, size=24, resize_short=32, cache=True)
    first = [cached[i] for i in range(6)]
    again = [cached[i] for i in range(6)]  # now from the cache
    fresh = ImageFolderDataset(folder, size=24, resize_short=32, cache=True)
    assert len(cached._cache) == 3
    for a, b, c in zip(first, again, [fresh[i] for i in range(6)]):
        assert torch.equal(a, b) and torch.equal(a, c)


def test_keep_scale_crops_at_the_native_resolution(folder):
    ds = ImageFolderDataset(folder, size=24, resize_short=0, cache=False)
    assert ds._decoded(ds.files[0]).shape[-2:] == (40, 72)  # not shrunk to the crop size


# ----------------------------------------------------------------------------- modern SR network

@pytest.mark.parametrize("scale", [2, 4, 8])
def test_modern_sr_network_is_bicubic_at_initialisation(scale):
    net = SuperResolutionNet(scale=scale, variant="modern", channels=8, num_residual=1).eval()
    x = torch.rand(2, 3, 12, 10)
    assert torch.allclose(net(x), bicubic_upsample(x, scale), atol=1e-6)
    assert net.config["norm"] == "none" and net.config["upsample"] == "nearest"
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    rebuilt = SuperResolutionNet(**net.config)
    assert rebuilt.config == net.config


def test_modern_sr_network_learns_a_correction():
    torch.manual_seed(0)
    net = SuperResolutionNet(scale=2, variant="modern", channels=8, num_residual=1).train()
    x, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)
    loss = (net(x) - target).pow(2).mean()
    loss.backward()
    last = [m for m in net.output.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    assert last.weight.grad.abs().sum() > 0  # the zero-initialised layer does receive gradient


def test_paper_sr_config_is_unchanged():
    assert set(SuperResolutionNet(scale=4).config) == {"scale", "channels", "num_residual", "norm", "upsample",
                                                       "padding"}
