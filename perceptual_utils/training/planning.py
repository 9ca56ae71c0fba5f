"""How long a run is and which memory layout it trains in: ``--time-budget`` planning and the
CPU layout measurement.

A time-budgeted run times a few training steps (:func:`measure_step_seconds`) of each crop-size
stage and plans its step count to end on time (:func:`plan_steps`, :func:`budgeted_plan`); on a
CPU it also times contiguous against channels-last (:func:`measure_cpu_layouts`), since which is
faster depends on the CPU. A resumed run keeps the plan its checkpoint recorded
(:func:`planned_from_checkpoint`), so it stays the same run.
"""
from __future__ import annotations

import copy
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from ..config import autocast_dtype, resolve_device
from ..durations import parse_duration
from .hardware import to_device
from .settings import TrainSettings, checkpoint_training_info

def plan_steps(budget_seconds: float, stages: Sequence[tuple[float, float]], overhead_seconds: float = 0.0,
               minimum: int = 10) -> int:
    """How many steps fit in ``budget_seconds`` when fraction ``f_i`` of them cost ``s_i`` seconds each.

    ``stages``: ``[(fraction, seconds_per_step), ...]`` with fractions summing to 1, e.g.
    ``[(0.85, 0.35), (0.15, 1.4)]`` for 85% of the steps at 128 px and 15% at 256 px.
    ``overhead_seconds`` (previews, checkpoints, the final export) is taken off first.
    """
    if not stages or abs(sum(f for f, _ in stages) - 1.0) > 1e-6 or min(f for f, _ in stages) < 0:
        raise ValueError(f"stage fractions must be non-negative and sum to 1, got {stages}")
    per_step = sum(f * s for f, s in stages)
    if not per_step > 0:
        raise ValueError("seconds per step must be positive")
    return max(int(minimum), int((budget_seconds - overhead_seconds) / per_step))


def measure_step_seconds(model: nn.Module, loss_fn: Callable[[nn.Module, Any], dict[str, torch.Tensor]],
                         batch: Any, device: str | torch.device | None = None, amp: bool = True,
                         repeats: int = 3, channels_last: bool = False) -> float:
    """Median wall time of one training step (forward, backward, Adam) on ``batch``.

    Runs on a copy of ``model`` with a throw-away optimiser, so the real run's weights,
    optimiser and RNG are untouched (the RNG state is restored afterwards); one warm-up step
    is not counted (it allocates buffers and picks kernels). ``channels_last``: time the step
    with the network and the batch in channels-last layout.
    """
    dev = resolve_device(device)
    rng = torch.get_rng_state()
    net = copy.deepcopy(model).to(dev).train()
    if channels_last:
        net.to(memory_format=torch.channels_last)
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    dtype = autocast_dtype(dev) if amp else None
    batch = to_device(batch, dev, channels_last)
    times = []
    try:
        for i in range(int(repeats) + 1):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                total = loss_fn(net, batch)["total"]
            total.backward()
            opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            if i:
                times.append(time.perf_counter() - t0)
    finally:
        torch.set_rng_state(rng)
    return float(statistics.median(times))


#: Channels-last is kept on a CPU only when it measures at least this much faster: the same step
#: timed twice on a shared 2-core machine can differ by 15% (benchmarks/results/train_throughput_2t.json).
LAYOUT_MARGIN = 0.10


@dataclass
class BudgetPlan:
    """What a ``--time-budget`` run plans: its step count, and the memory layout it trains in
    (``None``: the loop's default; see :attr:`TrainConfig.channels_last`)."""

    steps: int
    channels_last: bool | None = None
    seconds_per_step: dict[str, float] = field(default_factory=dict)  #: what was measured (first stage)

    def describe(self, time_budget: str | float) -> str:
        """One line for the user: the steps, the layout and what was measured."""
        layout = {True: "channels-last", False: "contiguous", None: "the default layout"}[self.channels_last]
        if not self.seconds_per_step:
            return f"time budget {time_budget}: {self.steps} steps in {layout}, the plan of the checkpoint resumed"
        timed = ", ".join(f"{k.replace('_', '-')} {v:.2f} s" for k, v in self.seconds_per_step.items())
        return f"time budget {time_budget}: {self.steps} steps planned, training in {layout} (one step: {timed})"


def budgeted_plan(out_dir: str | os.PathLike, time_budget: str | float, resume: bool, model: nn.Module,
                  loss_fn: Callable[[nn.Module, Any], dict[str, torch.Tensor]],
                  stages: Sequence[tuple[float, Callable[[], Any]]], device: str | torch.device | None = None,
                  amp: bool = True, layout: bool | None = None) -> BudgetPlan:
    """Plan a ``--time-budget`` run: the plan stored in a checkpoint being resumed (steps and
    layout, so a resumed run is the same run), else measure and plan, leaving 2% of the budget
    for previews and checkpoints.

    ``stages``: ``[(fraction of the steps, make_batch), ...]``, e.g. 85% of the steps on 128 px
    crops and 15% on 256 px. On a CPU the first stage's step is timed in both memory layouts,
    interleaved (contiguous, channels-last, contiguous, channels-last, so slow drifts of background
    load hit both alike; each layout's two timings are averaged), and channels-last is kept if it
    is at least :data:`LAYOUT_MARGIN` faster. Which one wins depends on the CPU and the
    precision (``benchmarks/train_throughput.py``: bf16 + channels-last 1.18x contiguous on an AMX
    CPU with one thread, slower there with two; within the noise on an AVX2 CPU in float32), so
    each machine measures its own. The other stages are timed in the chosen layout. ``layout``:
    ``True``/``False`` trains in that layout without comparing (a resumed run keeps its plan's
    steps and takes the layout given).
    """
    stored = planned_from_checkpoint(out_dir) if resume else None
    if stored is not None:
        return stored if layout is None else replace(stored, channels_last=layout)
    dev = resolve_device(device)
    first = stages[0][1]()
    measured: dict[str, float] = {}
    if layout is None and dev.type == "cpu":
        channels_last, measured = measure_cpu_layouts(model, loss_fn, first, dev, amp)
    else:  # the layout given, or on CUDA channels-last, as the loop uses there
        channels_last = True if layout is None else layout
        name = "channels_last" if channels_last else "contiguous"
        measured[name] = measure_step_seconds(model, loss_fn, first, dev, amp=amp, channels_last=channels_last)
    costs = [(stages[0][0], measured["channels_last" if channels_last else "contiguous"])]
    for fraction, make_batch in stages[1:]:
        costs.append((fraction, measure_step_seconds(model, loss_fn, make_batch(), dev, amp=amp,
                                                     channels_last=channels_last)))
    steps = plan_steps(parse_duration(time_budget) * 0.98, costs)
    return BudgetPlan(steps, channels_last, measured)


def measure_cpu_layouts(model: nn.Module, loss_fn: Callable[[nn.Module, Any], dict[str, torch.Tensor]], batch: Any,
                        device: torch.device, amp: bool = True) -> tuple[bool, dict[str, float]]:
    """Time a training step on ``batch`` contiguous and channels-last, interleaved twice (slow drifts
    of background load hit both alike); ``(keep channels-last?, mean seconds per step by layout)``.
    Channels-last is kept if it is at least :data:`LAYOUT_MARGIN` faster."""
    timings: dict[str, list[float]] = {"contiguous": [], "channels_last": []}
    for _ in range(2):
        for name, layout in (("contiguous", False), ("channels_last", True)):
            timings[name].append(measure_step_seconds(model, loss_fn, batch, device, amp=amp, repeats=2,
                                                      channels_last=layout))
    # The mean, not the faster timing: a plan needs the typical step (the minimum of a few noisy
    # timings is optimistic, and a run planned on it overshoots its budget).
    measured = {name: statistics.fmean(t) for name, t in timings.items()}
    return measured["channels_last"] <= (1 - LAYOUT_MARGIN) * measured["contiguous"], measured


#: A CPU run without a time budget checks the layouts only from this many steps on (the check costs
#: about ten steps' time), so short runs and tests start at once in the loop's default layout.
AUTO_LAYOUT_MIN_STEPS = 500


def run_layout(out_dir: str | os.PathLike, resume: bool, steps: int, model: nn.Module,
               loss_fn: Callable[[nn.Module, Any], dict[str, torch.Tensor]], make_batch: Callable[[], Any],
               device: str | torch.device | None = None, amp: bool = True,
               layout: bool | None = None) -> bool | None:
    """The memory layout of a run planned by its step count (no time budget): ``layout`` if given;
    else the checkpoint's when resuming (so the run stays the same run), measured on a CPU for runs
    of at least :data:`AUTO_LAYOUT_MIN_STEPS` steps, else ``None`` (the loop's default)."""
    if layout is not None:
        return layout
    stored = planned_from_checkpoint(out_dir) if resume else None
    if stored is not None:
        return stored.channels_last
    dev = resolve_device(device)
    if dev.type != "cpu" or int(steps) < AUTO_LAYOUT_MIN_STEPS:
        return None
    return measure_cpu_layouts(model, loss_fn, make_batch(), dev, amp)[0]


def plan_run(train: TrainSettings, steps: int, out_dir: str | os.PathLike, model: nn.Module,
             loss_fn: Callable[[nn.Module, Any], dict[str, torch.Tensor]],
             stages: Sequence[tuple[float, Callable[[], Any]]], device: str | torch.device | None = None
             ) -> tuple[int, bool | None]:
    """``(steps, channels_last)`` of a trainer's run: with a time budget, :func:`budgeted_plan`'s
    (said on one line when ``train.progress``); else the recipe's ``steps`` and :func:`run_layout`'s
    layout (timed on the first stage's batch). ``stages`` as for :func:`budgeted_plan`."""
    layout = train.forced_layout()
    if train.time_budget is None:
        return steps, run_layout(out_dir, train.resume, steps, model, loss_fn, stages[0][1], device, amp=train.amp,
                                 layout=layout)
    plan = budgeted_plan(out_dir, train.time_budget, train.resume, model, loss_fn, stages, device, amp=train.amp,
                         layout=layout)
    if train.progress:
        print(plan.describe(train.time_budget), file=sys.stderr)
    return plan.steps, plan.channels_last



def planned_from_checkpoint(out_dir: str | os.PathLike) -> BudgetPlan | None:
    """The plan of a time-budgeted run, read from its checkpoint (``None`` if none), so a resumed
    run keeps its schedule and memory layout instead of planning anew. (Checkpoints written
    before the layout was recorded trained in the loop's default layout.)"""
    info = checkpoint_training_info(out_dir)
    if info is None:
        return None
    steps = info.get("steps")
    if not steps:
        return None
    layout = {"channels_last": True, "contiguous": False}.get(info.get("memory_format"))
    return BudgetPlan(int(steps), layout)

