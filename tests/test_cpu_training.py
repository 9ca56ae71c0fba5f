"""The pieces of fast CPU training: the truncated content pass, bf16 autocast, the learning-rate
and crop schedules, time-budget planning, the in-memory data cache, the recipes, and the
modern super-resolution network that starts at bicubic."""
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
from perceptual_utils.sr.training import SR_RECIPES
from perceptual_utils.style.net import StyleTransferNet
from perceptual_utils.style.training import STYLE_RECIPES, crop_schedule
from perceptual_utils.training import (FINE_TUNE_WARMUP_STEPS, TrainConfig, TrainSettings, measure_step_seconds,
                                       parse_duration, plan_steps, resolve_recipe)


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


# ----------------------------------------------------------------------------- schedules and budgets

def test_cosine_schedule_runs_from_lr_to_lr_final():
    config = TrainConfig(steps=101, lr=1e-3, lr_schedule="cosine", lr_final=0.1)
    lrs = [config.lr_at(s) for s in range(101)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-4)
    assert lrs[50] == pytest.approx(0.5 * (1e-3 + 1e-4))
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert TrainConfig(steps=10, lr=2e-3).lr_at(7) == 2e-3  # constant: the paper
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="linear")
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=float("inf"))


def test_warmup_ramps_the_rate_up_then_follows_the_schedule():
    cosine = TrainConfig(steps=101, lr=1e-3, lr_schedule="cosine")
    warm = TrainConfig(steps=101, lr=1e-3, lr_schedule="cosine", warmup_steps=9)
    assert warm.lr_at(0) == pytest.approx(cosine.lr_at(0) / 10)  # the first Adam step is a tenth as large
    ramp = [warm.lr_at(s) for s in range(10)]
    assert all(a < b for a, b in zip(ramp, ramp[1:]))
    assert [warm.lr_at(s) for s in range(9, 101)] == [cosine.lr_at(s) for s in range(9, 101)]
    assert TrainConfig(steps=10, lr=2e-3, warmup_steps=3).lr_at(1) == pytest.approx(1e-3)  # constant schedule too
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="warmup_steps"):
            TrainConfig(warmup_steps=bad)


def test_a_fine_tune_warms_up_by_default_and_a_given_value_wins():
    assert TrainSettings().resolved_warmup_steps() == 0
    assert TrainSettings(init_from="x4_pixel").resolved_warmup_steps() == FINE_TUNE_WARMUP_STEPS > 0
    assert TrainSettings(init_from="x4_pixel", warmup_steps=0).resolved_warmup_steps() == 0
    assert TrainSettings(warmup_steps=5).resolved_warmup_steps() == 5
    settings = TrainSettings(init_from="x4_pixel")
    config = settings.loop_config({"batch_size": 2, "lr": 1e-3, "num_workers": 0, "lr_schedule": "cosine"}, 50)
    assert config.warmup_steps == FINE_TUNE_WARMUP_STEPS


@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("1h30m", 5400), ("90s", 90), ("600", 600),
                                           (45, 45), ("2h", 7200), ("1.5m", 90)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "soon", "-5m", "0", "m"])
def test_parse_duration_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_plan_steps_fills_the_budget_with_the_staged_costs():
    # 85% of steps at 0.4 s, 15% at 1.6 s: 0.58 s per step on average
    steps = plan_steps(1800, [(0.85, 0.4), (0.15, 1.6)])
    assert steps == int(1800 / 0.58)
    assert 0.85 * steps * 0.4 + 0.15 * steps * 1.6 <= 1800
    assert plan_steps(100, [(1.0, 0.5)], overhead_seconds=50) == 100
    assert plan_steps(1, [(1.0, 10.0)]) == 10  # never fewer than the minimum
    with pytest.raises(ValueError, match="sum to 1"):
        plan_steps(100, [(0.5, 1.0)])


def test_measure_step_seconds_leaves_model_and_rng_untouched():
    net = StyleTransferNet("modern", channels=4, num_residual=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    batch = torch.rand(2, 3, 32, 32)
    rng = torch.get_rng_state()

    def loss_fn(model, batch):
        out = model(batch)
        return {"total": (out - batch).pow(2).mean() + 0 * torch.rand(()).sum()}

    seconds = measure_step_seconds(net, loss_fn, batch, "cpu", repeats=2)
    assert seconds > 0
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_crop_schedule():
    assert crop_schedule(1000, 128, 256, 0.15) == [(0, 128), (850, 256)]
    assert crop_schedule(1000, 256, None, 0.0) == [(0, 256)]
    assert crop_schedule(1000, 128, 128, 0.5) == [(0, 128)]


def test_recipes_fill_only_what_is_not_given():
    r = resolve_recipe("cpu", STYLE_RECIPES, {"steps": 12, "lr": None})
    assert r["steps"] == 12 and r["lr"] == STYLE_RECIPES["cpu"]["lr"] and r["recipe"] == "cpu"
    assert resolve_recipe("paper", SR_RECIPES, {})["variant"] == "paper"
    assert STYLE_RECIPES["cpu"]["variant"] == "modern" and SR_RECIPES["cpu"]["variant"] == "modern"
    with pytest.raises(ValueError, match="recipe"):
        resolve_recipe("gpu", STYLE_RECIPES, {})


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


# ----------------------------------------------------------------------------- memory layout

def _scripted_timer(monkeypatch, seconds_by_layout):
    """Replace the step timer with one that answers ``seconds_by_layout[channels_last]`` and logs calls."""
    import perceptual_utils.training as training

    calls = []

    def fake(model, loss_fn, batch, device=None, amp=True, repeats=3, channels_last=False):
        calls.append((tuple(batch.shape), channels_last))
        return seconds_by_layout[channels_last] * (batch.shape[-1] / 32) ** 2

    monkeypatch.setattr(training, "measure_step_seconds", fake)
    return calls


@pytest.mark.parametrize("last, expected", [(0.8, True), (0.93, False), (1.3, False)])
def test_budget_plan_keeps_channels_last_on_a_cpu_only_where_it_measures_faster(monkeypatch, tmp_path, last,
                                                                                 expected):
    from perceptual_utils.training import budgeted_plan

    calls = _scripted_timer(monkeypatch, {False: 1.0, True: last})
    stages = [(0.5, lambda: torch.rand(2, 3, 32, 32)), (0.5, lambda: torch.rand(2, 3, 64, 64))]
    plan = budgeted_plan(tmp_path / "run", 1000, True, torch.nn.Identity(), None, stages, "cpu")
    assert plan.channels_last is expected
    # both layouts on the first stage, interleaved twice; the other stage only in the chosen one
    small = (2, 3, 32, 32)
    assert calls == [(small, False), (small, True)] * 2 + [((2, 3, 64, 64), expected)]
    first = last if expected else 1.0
    assert plan.steps == plan_steps(1000 * 0.98, [(0.5, first), (0.5, 4 * first)])
    assert plan.seconds_per_step == {"contiguous": 1.0, "channels_last": last}
    line = plan.describe("30m")
    assert f"{plan.steps} steps planned" in line and ("channels-last" if expected else "contiguous") in line
    assert "contiguous 1.00 s" in line and f"channels-last {last:.2f} s" in line


def _tiny_run(tmp_path, channels_last, steps=2, stop_after=None):
    from perceptual_utils.training import train_loop

    torch.manual_seed(0)
    net = StyleTransferNet("modern", channels=4, num_residual=1)
    data = [torch.rand(3, 32, 32) for _ in range(8)]

    def loss_fn(model, batch):
        return {"total": (model(batch) - batch).pow(2).mean()}

    config = TrainConfig(steps=steps, batch_size=2, num_workers=0, progress=False, channels_last=channels_last,
                         checkpoint_every=1, preview_every=100)
    return net, train_loop(net, data, loss_fn, config, tmp_path / "run", stop_after=stop_after)


@pytest.mark.parametrize("channels_last", [True, False, None])
def test_the_loop_trains_in_the_chosen_layout_and_a_resumed_plan_keeps_it(tmp_path, monkeypatch, channels_last):
    from perceptual_utils.training import budgeted_plan, planned_from_checkpoint

    net, _ = _tiny_run(tmp_path, channels_last, stop_after=1)
    weight = next(p for p in net.parameters() if p.dim() == 4 and p.shape[-1] > 1 and p.shape[1] > 1)
    assert weight.is_contiguous(memory_format=torch.channels_last) is bool(channels_last)
    plan = planned_from_checkpoint(tmp_path / "run")
    assert plan.steps == 2 and plan.channels_last is bool(channels_last)  # None on a CPU: contiguous
    calls = _scripted_timer(monkeypatch, {False: 1.0, True: 0.5})
    stages = [(1.0, lambda: torch.rand(2, 3, 32, 32))]
    assert budgeted_plan(tmp_path / "run", 1000, True, net, None, stages, "cpu") == plan
    assert "the plan of the checkpoint resumed" in plan.describe("30m")
    assert calls == []  # a resumed run is the same run: nothing is measured again
    assert budgeted_plan(tmp_path / "run", 1000, False, net, None, stages, "cpu").channels_last is True


def test_budget_plan_plans_on_the_mean_timing_not_the_fastest(monkeypatch, tmp_path):
    """The minimum of a few noisy timings is optimistic: a plan made on it overshoots its budget."""
    import perceptual_utils.training as training

    answers = iter([1.0, 0.6, 2.0, 1.0])  # contiguous, channels-last, contiguous, channels-last
    monkeypatch.setattr(training, "measure_step_seconds", lambda *a, **k: next(answers))
    plan = training.budgeted_plan(tmp_path / "run", 100, True, torch.nn.Identity(), None,
                                  [(1.0, lambda: torch.rand(1, 3, 8, 8))], "cpu")
    assert plan.seconds_per_step == {"contiguous": 1.5, "channels_last": 0.8}
    assert plan.channels_last is True and plan.steps == int(100 * 0.98 / 0.8)


def test_a_channels_last_run_resumes_exactly(tmp_path):
    _, whole = _tiny_run(tmp_path / "whole", True, steps=4)
    _tiny_run(tmp_path / "split", True, steps=4, stop_after=2)
    _, resumed = _tiny_run(tmp_path / "split", True, steps=4)
    assert resumed.resumed_from == 2
    assert [row["total"] for row in resumed.history] == [row["total"] for row in whole.history]


def test_runs_without_a_time_budget_check_the_layout_only_when_long_enough(monkeypatch, tmp_path):
    from perceptual_utils.training import AUTO_LAYOUT_MIN_STEPS, run_layout

    calls = _scripted_timer(monkeypatch, {False: 1.0, True: 0.5})
    make = lambda: torch.rand(2, 3, 32, 32)
    assert run_layout(tmp_path / "a", True, AUTO_LAYOUT_MIN_STEPS - 1, torch.nn.Identity(), None, make, "cpu") is None
    assert calls == []  # a short run (and every test) starts at once, in the loop's default layout
    assert run_layout(tmp_path / "a", True, AUTO_LAYOUT_MIN_STEPS, torch.nn.Identity(), None, make, "cpu") is True
    assert len(calls) == 4


def test_a_resumed_run_without_a_time_budget_keeps_its_layout(monkeypatch, tmp_path):
    from perceptual_utils.training import run_layout

    net, _ = _tiny_run(tmp_path, False, stop_after=1)  # a checkpoint written in contiguous layout
    calls = _scripted_timer(monkeypatch, {False: 1.0, True: 0.5})  # channels-last would now measure faster
    assert run_layout(tmp_path / "run", True, 10_000, net, None, lambda: torch.rand(2, 3, 32, 32), "cpu") is False
    assert calls == []


def test_a_memory_format_given_is_used_without_comparing(monkeypatch, tmp_path):
    from perceptual_utils.training import TrainSettings, budgeted_plan, run_layout

    assert [TrainSettings(memory_format=m).forced_layout() for m in ("auto", "contiguous", "channels-last")] == [
        None, False, True]
    with pytest.raises(ValueError, match="memory_format"):
        TrainSettings(memory_format="nhwc").forced_layout()
    calls = _scripted_timer(monkeypatch, {False: 1.0, True: 0.5})
    make = lambda: torch.rand(2, 3, 32, 32)
    plan = budgeted_plan(tmp_path / "a", 100, True, torch.nn.Identity(), None, [(1.0, make)], "cpu", layout=False)
    assert plan.channels_last is False and plan.seconds_per_step == {"contiguous": 1.0}
    assert calls == [((2, 3, 32, 32), False)]  # timed once, in the layout given, for the plan only
    assert run_layout(tmp_path / "a", True, 10_000, torch.nn.Identity(), None, make, "cpu", layout=True) is True
    assert len(calls) == 1


def test_train_commands_take_a_memory_format():
    import argparse

    from perceptual_utils.training import TrainSettings, add_training_arguments

    p = argparse.ArgumentParser()
    add_training_arguments(p, recipes={"cpu": {}})
    base = ["--out", "x"]
    assert TrainSettings.from_args(p.parse_args(base)).memory_format == "auto"
    assert TrainSettings.from_args(p.parse_args(base + ["--memory-format", "channels-last"])).forced_layout() is True
    with pytest.raises(SystemExit):
        p.parse_args(base + ["--memory-format", "nhwc"])
