"""Planning a run: steps from a time budget, the step timer, and the memory layout measured on a
CPU (kept by a resumed run), with the loop training in the layout chosen."""
from __future__ import annotations

import pytest
import torch

from perceptual_utils.style.net import StyleTransferNet
from perceptual_utils.training.loop import train_loop
from perceptual_utils.training.planning import (AUTO_LAYOUT_MIN_STEPS, budgeted_plan, measure_step_seconds,
                                                planned_from_checkpoint, plan_steps, run_layout)
from perceptual_utils.training.settings import TrainConfig, TrainSettings


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


def _scripted_timer(monkeypatch, seconds_by_layout):
    """Replace the step timer with one that answers ``seconds_by_layout[channels_last]`` and logs calls."""
    import perceptual_utils.training.planning as training

    calls = []

    def fake(model, loss_fn, batch, device=None, amp=True, repeats=3, channels_last=False):
        calls.append((tuple(batch.shape), channels_last))
        return seconds_by_layout[channels_last] * (batch.shape[-1] / 32) ** 2

    monkeypatch.setattr(training, "measure_step_seconds", fake)
    return calls


@pytest.mark.parametrize("last, expected", [(0.8, True), (0.93, False), (1.3, False)])
def test_budget_plan_keeps_channels_last_on_a_cpu_only_where_it_measures_faster(monkeypatch, tmp_path, last,
                                                                                 expected):
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
    import perceptual_utils.training.planning as training

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
    calls = _scripted_timer(monkeypatch, {False: 1.0, True: 0.5})
    make = lambda: torch.rand(2, 3, 32, 32)
    assert run_layout(tmp_path / "a", True, AUTO_LAYOUT_MIN_STEPS - 1, torch.nn.Identity(), None, make, "cpu") is None
    assert calls == []  # a short run (and every test) starts at once, in the loop's default layout
    assert run_layout(tmp_path / "a", True, AUTO_LAYOUT_MIN_STEPS, torch.nn.Identity(), None, make, "cpu") is True
    assert len(calls) == 4


def test_a_resumed_run_without_a_time_budget_keeps_its_layout(monkeypatch, tmp_path):
    net, _ = _tiny_run(tmp_path, False, stop_after=1)  # a checkpoint written in contiguous layout
    calls = _scripted_timer(monkeypatch, {False: 1.0, True: 0.5})  # channels-last would now measure faster
    assert run_layout(tmp_path / "run", True, 10_000, net, None, lambda: torch.rand(2, 3, 32, 32), "cpu") is False
    assert calls == []


def test_a_memory_format_given_is_used_without_comparing(monkeypatch, tmp_path):
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
