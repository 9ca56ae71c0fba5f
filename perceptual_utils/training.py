"""The training loop shared by the style-transfer and super-resolution networks.

One loop for both tasks: Adam, a tqdm bar with the loss terms and images/s, previews every N
steps, checkpoints written atomically every N steps (and on Ctrl-C), exact resume, mixed
precision and channels-last on CUDA, and data-parallel training under ``torchrun``.

Exact resume works because the data of every step is a pure function of the step number
(:class:`~perceptual_utils.training_data.StepSampler`), and the checkpoint holds the model, the
optimiser state, the step, the RNG state and the loss history.
"""
from __future__ import annotations

import copy
import json
import math
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Collection, Sequence
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .cli_options import add_progress_option, add_device_option, add_vgg_weights_option
from .config import autocast_dtype, resolve_device
from .images import save_image
from .model_io import (ModelFileError, load_checkpoint, load_model, model_kind, read_checkpoint_metadata,
                       save_checkpoint, save_model, tensors_digest)
from .run_folder import changed_settings, guard_run_folder
from .training_data import StepSampler

CHECKPOINT_NAME = "checkpoint.safetensors"
MODEL_NAME = "model.safetensors"


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping settings of a training run."""

    steps: int = 40_000
    batch_size: int = 4
    lr: float = 1e-3
    seed: int = 0
    checkpoint_every: int = 1000
    #: Also checkpoint when this many minutes passed since the last one (0: steps only). On a CPU a
    #: step can take seconds, so 1000 steps can be hours of work that a crash or a closed laptop
    #: would lose; the time rule bounds that loss whatever the speed.
    checkpoint_minutes: float = 10.0
    preview_every: int = 500
    num_workers: int = 2
    amp: bool = True            # autocast: bf16/fp16 on CUDA, bf16 on CPUs with native bf16
    #: Memory layout. ``None``: channels-last on CUDA, contiguous on a CPU, where which is faster depends
    #: on the CPU and the network (benchmarks/train_throughput.py: SR steps 1.6-1.8x faster channels-last
    #: on an AVX2 CPU in float32, style steps within the noise; mixed results on an AMX CPU in bf16), so
    #: the trainers measure both for a ``--time-budget`` run (:func:`budgeted_plan`) or a long one
    #: (:func:`run_layout`) and pass the faster. ``True``/``False``: as given.
    channels_last: bool | None = None
    device: str | None = None
    progress: bool = True
    lr_schedule: str = "constant"  # "constant" (paper) or "cosine" (decays to lr * lr_final)
    lr_final: float = 0.1
    #: Linear learning-rate warm-up over the first ``warmup_steps`` steps (0: none). Adam's first
    #: updates move every weight by about ``lr`` whatever its gradient (with one sample, m/sqrt(v) is
    #: +-1), which jolts a network that is already trained when fine-tuning it (``init_from``); a
    #: short ramp lets the moment estimates settle first (Goyal et al. 2017, Sec. 2.2; Liu et al.
    #: 2020, "On the Variance of the Adaptive Learning Rate and Beyond").
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "preview_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {self.lr}")
        if isinstance(self.checkpoint_minutes, bool) or not (
                math.isfinite(self.checkpoint_minutes) and self.checkpoint_minutes >= 0):
            raise ValueError(f"checkpoint_minutes must be a finite number >= 0, got {self.checkpoint_minutes}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; choose from {', '.join(LR_SCHEDULES)}")
        if not 0 < self.lr_final <= 1:
            raise ValueError(f"lr_final must be in (0, 1], got {self.lr_final}")
        if int(self.num_workers) < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if isinstance(self.warmup_steps, bool) or int(self.warmup_steps) != self.warmup_steps or self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {self.warmup_steps}")

    def lr_at(self, step: int) -> float:
        """Learning rate of step ``step`` (0-based), a pure function of the step so that resuming
        needs no scheduler state. ``cosine``: half a cosine from ``lr`` to ``lr * lr_final``
        (Loshchilov & Hutter's SGDR without restarts), which lets a short run take large steps
        early and still settle at the end. ``warmup_steps`` scales the first steps by
        ``(step + 1) / (warmup_steps + 1)``, reaching the schedule's rate at step ``warmup_steps``."""
        warm = min((step + 1) / (self.warmup_steps + 1), 1.0) if self.warmup_steps else 1.0
        if self.lr_schedule == "constant" or self.steps <= 1:
            return self.lr * warm
        t = min(max(step / (self.steps - 1), 0.0), 1.0)
        low = self.lr * self.lr_final
        return warm * (low + 0.5 * (self.lr - low) * (1.0 + math.cos(math.pi * t)))


LR_SCHEDULES = ("constant", "cosine")

#: Default warm-up of a fine-tune (``init_from``). Measured on the shipped ``wave``'s shift-consistency
#: fine-tune, 254 steps each way from the same start: objective 10.23 with it against 11.37 without,
#: the same checkerboard energy (``benchmarks/results/shift_finetune_warmup_ab.json``); the x4 feature-loss
#: fine-tune from ``x4_pixel`` came out the same either way (``benchmarks/results/x4_feature_warmup_ab.json``).
FINE_TUNE_WARMUP_STEPS = 30
MEMORY_FORMATS = ("auto", "contiguous", "channels-last")


@dataclass
class TrainSettings:
    """How to train, the same for :func:`~perceptual_utils.style.training.train_style` and
    :func:`~perceptual_utils.sr.training.train_sr`: ``train=TrainSettings(...)`` (or the task's
    subclass, which adds its data settings). ``None`` takes the recipe's value; every value given wins.

    ``recipe``: ``"paper"`` or ``"cpu"`` (default: ``paper`` with CUDA, ``cpu`` without).
    ``time_budget``: e.g. ``"30m"``: plan ``steps`` from the measured seconds per step so the
    whole schedule ends on time (a resumed run keeps its plan). ``memory_format``: ``"auto"``
    (measured on a CPU, see :func:`budgeted_plan` and :func:`run_layout`), ``"contiguous"`` or
    ``"channels-last"``. ``resume``: continue from the run
    folder's checkpoint (exactly). ``stop_after``: stop, resumably, after this many steps of this call.
    ``init_from``: start from the weights of a model file (a path or a shipped model's name) of the
    same architecture instead of a random initialisation, e.g. a feature-loss SR network from the
    per-pixel one (as SRGAN starts from SRResNet, Ledig et al. 2017, Sec. 3.2). A run folder's
    checkpoint still wins when resuming. ``warmup_steps``: ramp the learning rate up linearly over
    this many first steps (see :attr:`TrainConfig.warmup_steps`); ``None``, the default, means
    :data:`FINE_TUNE_WARMUP_STEPS` when ``init_from`` is given (a fine-tune) and none otherwise.
    """

    recipe: str | None = None
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    lr_schedule: str | None = None
    num_workers: int | None = None
    time_budget: str | float | None = None
    seed: int = 0
    checkpoint_every: int = 1000
    checkpoint_minutes: float = 10.0
    preview_every: int = 500
    amp: bool = True
    memory_format: str = "auto"
    device: str | None = None
    progress: bool = True
    resume: bool = True
    stop_after: int | None = None
    init_from: str | os.PathLike | None = None
    warmup_steps: int | None = None

    #: The fields a recipe fills when they are ``None`` (the subclasses add their own).
    recipe_keys = ("steps", "batch_size", "lr", "lr_schedule", "num_workers")

    def resolve(self, recipes: dict[str, dict[str, Any]], **given: Any) -> dict[str, Any]:
        """The recipe's settings with this object's given values (and ``given``) on top."""
        return resolve_recipe(self.recipe, recipes, {k: getattr(self, k) for k in self.recipe_keys} | given)

    @classmethod
    def from_args(cls, args: Any, **task: Any) -> "TrainSettings":
        """The settings of a ``train-*`` command (the options of :func:`add_training_arguments`),
        with the task's own fields in ``task``."""
        return cls(recipe=args.recipe, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                   lr_schedule=args.lr_schedule, num_workers=args.workers, time_budget=args.time_budget,
                   seed=args.seed, checkpoint_every=args.checkpoint_every,
                   checkpoint_minutes=args.checkpoint_minutes, preview_every=args.preview_every,
                   amp=not args.no_amp, memory_format=args.memory_format, device=args.device,
                   progress=args.progress, resume=not args.no_resume, stop_after=args.stop_after,
                   init_from=args.init_from, warmup_steps=args.warmup_steps, **task)

    def resolved_warmup_steps(self, out_dir: str | os.PathLike | None = None) -> int:
        """The run's warm-up steps: as given; else, when resuming the run in ``out_dir``, what its
        checkpoint recorded (so a fine-tune started before the default warm-up still resumes as it
        began); else :data:`FINE_TUNE_WARMUP_STEPS` for a fine-tune and 0 otherwise."""
        if self.warmup_steps is not None:
            return self.warmup_steps
        info = checkpoint_training_info(out_dir) if self.resume and out_dir is not None else None
        if info is not None:
            return int(info.get("warmup_steps", 0))  # recorded only when used
        return FINE_TUNE_WARMUP_STEPS if self.init_from is not None else 0

    def initialise(self, model: nn.Module) -> dict[str, str]:
        """Load ``init_from``'s weights into ``model`` (nothing when it is ``None``); returns what to
        record in the model file's training info (the source's name and weights digest)."""
        if self.init_from is None:
            return {}
        return initialise_from(model, self.init_from)

    def forced_layout(self) -> bool | None:
        """``True``/``False`` when ``memory_format`` names a layout, ``None`` for ``"auto"``."""
        if self.memory_format not in MEMORY_FORMATS:
            raise ValueError(f"unknown memory_format {self.memory_format!r}; choose from {', '.join(MEMORY_FORMATS)}")
        return None if self.memory_format == "auto" else self.memory_format == "channels-last"

    def loop_config(self, r: dict[str, Any], steps: int, channels_last: bool | None = None,
                    out_dir: str | os.PathLike | None = None) -> TrainConfig:
        """The :class:`TrainConfig` of :func:`train_loop` for resolved recipe settings ``r``
        (``channels_last``: the layout a :class:`BudgetPlan` chose; ``None``, the loop's default;
        ``out_dir``: the run folder, whose checkpoint a resumed run keeps its warm-up from)."""
        return TrainConfig(steps=int(steps), batch_size=int(r["batch_size"]), lr=float(r["lr"]), seed=self.seed,
                           checkpoint_every=self.checkpoint_every, checkpoint_minutes=self.checkpoint_minutes,
                           preview_every=self.preview_every, num_workers=int(r["num_workers"]), amp=self.amp,
                           device=self.device,
                           progress=self.progress, lr_schedule=r["lr_schedule"], channels_last=channels_last,
                           warmup_steps=self.resolved_warmup_steps(out_dir))


def initialise_from(model: nn.Module, source: str | os.PathLike) -> dict[str, str]:
    """Copy the weights of the model file ``source`` (a path or a shipped model's name) into ``model``.

    Raises:
        ModelFileError: unreadable file, another kind of network, or another architecture (the
            differing settings are named).
    """
    kind = model_kind(model)
    loaded = load_model(source, kind=kind)
    differing = sorted(k for k in set(loaded.config) | set(model.config)
                       if loaded.config.get(k) != model.config.get(k))
    if differing:
        detail = ", ".join(f"{k}: {loaded.config.get(k)!r} there, {model.config.get(k)!r} here" for k in differing)
        raise ModelFileError(f"{source}: --init-from needs the same architecture ({detail})")
    state = loaded.state_dict()
    model.load_state_dict(state)
    return {"init_from": Path(str(source)).name, "init_from_digest": tensors_digest(state)}


def sort_options(who: str, options: dict[str, Any], train: TrainSettings | None, train_cls: type,
                 net: dict[str, Any] | None, net_keys: Collection[str],
                 other_keys: Collection[str] = ()) -> tuple[TrainSettings, dict[str, Any], dict[str, Any]]:
    """Sort a trainer's flat keyword options (``steps=100, channels=16, style_weight=2``: the
    older call style, still accepted) into ``(train settings, network options, the rest)``: a
    field of ``train_cls`` updates ``train``, a name in ``net_keys`` the network's options, a name
    in ``other_keys`` is handed back; anything else is a ``TypeError`` naming it."""
    names = {f.name for f in fields(train_cls)}
    unknown = sorted(set(options) - names - set(net_keys) - set(other_keys))
    if unknown:
        raise TypeError(f"{who}() got unexpected keyword arguments {unknown}")
    train = train if train is not None else train_cls()
    if not isinstance(train, train_cls):  # a plain TrainSettings for a task: keep its values
        train = train_cls(**{f.name: getattr(train, f.name) for f in fields(train)})
    train = replace(train, **{k: v for k, v in options.items() if k in names})
    net = dict(net or {}) | {k: v for k, v in options.items() if k in net_keys}
    return train, net, {k: v for k, v in options.items() if k in other_keys}


def default_recipe() -> str:
    """``paper`` with CUDA, ``cpu`` without."""
    return "paper" if torch.cuda.is_available() else "cpu"


def resolve_recipe(recipe: str | None, table: dict[str, dict[str, Any]], given: dict[str, Any]) -> dict[str, Any]:
    """The recipe's settings with every explicitly given (non-``None``) value on top."""
    name = recipe or default_recipe()
    if name not in table:
        raise ValueError(f"unknown recipe {name!r}; choose from {', '.join(table)}")
    settings = dict(table[name])
    settings.update({k: v for k, v in given.items() if v is not None})
    settings["recipe"] = name
    return settings


def parse_duration(text: str | float | int) -> float:
    """Seconds from ``"45m"``, ``"1h30m"``, ``"90s"``, ``"2h"`` or a plain number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        raw = str(text).strip().lower()
        match = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", raw)
        if not raw or match is None:
            raise ValueError(f"cannot read the duration {text!r}; write e.g. 30m, 1h30m, 90s or 600")
        h, m, sec = (float(g) if g else 0.0 for g in match.groups())
        seconds = 3600 * h + 60 * m + sec
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"a duration must be positive, got {text!r}")
    return seconds


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
    batch = _to_device(batch, dev, channels_last)
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


def checkpoint_training_info(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The training settings recorded in ``out_dir``'s checkpoint (``None`` if it has none): what a
    resumed run keeps (its plan, its warm-up) instead of choosing anew."""
    path = Path(out_dir) / CHECKPOINT_NAME
    if not path.is_file():
        return None
    return read_checkpoint_metadata(path).get("extra", {}).get("training_info", {})


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


@dataclass
class TrainResult:
    """What a run produced: the model file, the loss history (one dict per step) and speed."""

    model_path: Path | None
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    images_per_second: float = 0.0
    resumed_from: int = 0
    steps: int = 0  #: the run's planned total (a --time-budget run plans it)
    model: nn.Module | None = None  #: the trained network, in eval mode (set by train_style / train_sr)

    def __iter__(self):
        """``model, result = train_sr(...)``, the older return shape of ``train_sr``, still works (deprecated)."""
        warnings.warn("unpacking a TrainResult as (model, result) is deprecated; use result.model",
                      DeprecationWarning, stacklevel=2)
        return iter((self.model, self))


def hardware_description(device: torch.device) -> str:
    """``"NVIDIA H100 (CUDA)"`` or ``"x86_64 CPU, 2 threads"``: where a model was trained."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    return f"{platform.machine() or 'unknown'} CPU, {torch.get_num_threads()} threads"


def _distributed() -> tuple[int, int, int]:
    """(rank, world_size, local_rank), initialising the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))


def _to_device(batch: Any, device: torch.device, channels_last: bool) -> Any:
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        return batch.contiguous(memory_format=torch.channels_last) if channels_last and batch.dim() == 4 else batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(b, device, channels_last) for b in batch)
    return batch


def _history_tensor(history: list[dict[str, float]], names: list[str]) -> torch.Tensor:
    return torch.tensor([[row.get(n, math.nan) for n in names] for row in history], dtype=torch.float64).reshape(
        len(history), len(names))


@guard_run_folder("out_dir")
def train_loop(
    model: nn.Module,
    dataset: Dataset,
    loss_fn: Callable[[nn.Module, Any], dict[str, torch.Tensor]],
    config: TrainConfig,
    out_dir: str | os.PathLike,
    training_info: dict[str, Any] | None = None,
    preview_fn: Callable[[nn.Module], torch.Tensor] | None = None,
    resume: bool = True,
    stop_after: int | None = None,
) -> TrainResult:
    """Train ``model`` on ``dataset`` and write ``out_dir/model.safetensors``.

    Args:
        model: a network with a ``.config`` dict (see :mod:`perceptual_utils.model_io`).
        dataset: indexed by global sample number (e.g. :class:`ImageFolderDataset`).
        loss_fn: ``loss_fn(model, batch) -> {"total": ..., <term>: ...}``; if it is an
            ``nn.Module`` (e.g. holding the VGG loss network) it is moved to the device.
        config: steps, batch size, learning rate, checkpoint/preview intervals, ...
        out_dir: run folder: ``checkpoint.safetensors``, ``model.safetensors``,
            ``history.csv``, ``previews/step_NNNNNN.jpg``.
        training_info: settings recorded in the model file (style image, loss weights, data...).
            Resuming with different settings is refused, so a run is never silently mixed.
        preview_fn: ``preview_fn(model) -> (3, H, W) or (B, 3, H, W)`` images, saved every
            ``preview_every`` steps and at the end.
        resume: continue from ``out_dir/checkpoint.safetensors`` if it exists.
        stop_after: stop (with a checkpoint) after this many steps of *this call*; for tests and
            time-boxed sessions. The run can be resumed later.
    """
    rank, world, local_rank = _distributed()
    device = resolve_device(config.device) if config.device else (
        torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu"))
    cuda = device.type == "cuda"
    channels_last = cuda if config.channels_last is None else bool(config.channels_last)
    out = Path(out_dir)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    info = dict(training_info or {})
    info.update({k: v for k, v in asdict(config).items()
                 if k not in ("device", "progress", "num_workers", "channels_last")})
    if not config.warmup_steps:  # recorded only when used: older checkpoints (without it) still resume
        del info["warmup_steps"]
    info["memory_format"] = "channels_last" if channels_last else "contiguous"  # what the run used
    # Settings that may change between an interrupted run and its resumption.
    resumable_keys = {"steps", "checkpoint_every", "checkpoint_minutes", "preview_every", "amp", "channels_last",
                      "memory_format", "precision", "time_budget"}

    torch.manual_seed(config.seed)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

    start_step, history, prior_seconds, rng_state = 0, [], 0.0, None
    ckpt_path = out / CHECKPOINT_NAME
    if resume and ckpt_path.is_file():
        meta = load_checkpoint(ckpt_path, model, optimizer)
        saved = meta["extra"].get("training_info", {})
        changed = changed_settings(saved, info, ignore=resumable_keys)
        if changed:
            raise ModelFileError(
                f"{ckpt_path}: checkpoint was made with different settings ({', '.join(changed)}); "
                "use another output folder or start afresh without resuming")
        start_step = int(meta["step"])
        prior_seconds = float(meta["extra"].get("train_seconds", 0.0))
        names = meta["extra"].get("history_names", [])
        rows = meta["extra_tensors"].get("history")
        if rows is not None:
            history = [dict(zip(names, map(float, r))) for r in rows.tolist()]
        # load_checkpoint restored the generator as it was at the checkpoint; keep that state for
        # the first step, so the random draws inside a loss (grid jitter's offsets, shift
        # consistency's shifts) continue exactly as in an unbroken run.
        rng_state = torch.get_rng_state()

    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if cuda else None)

    sampler = StepSampler(start_step, config.steps, config.batch_size, rank, world)
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, num_workers=config.num_workers,
                        pin_memory=cuda, drop_last=False, persistent_workers=False)
    amp_dtype = autocast_dtype(device) if config.amp else None
    use_amp = amp_dtype is not None
    info["precision"] = str(amp_dtype or torch.float32).replace("torch.", "")
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and amp_dtype == torch.float16)

    def checkpoint(step: int) -> None:
        if rank != 0:
            return
        names = sorted({k for row in history for k in row})
        save_checkpoint(ckpt_path, model, optimizer, step,
                        extra={"training_info": info, "history_names": names,
                               "train_seconds": prior_seconds + time.perf_counter() - t0},
                        extra_tensors={"history": _history_tensor(history, names)})

    def preview(step: int) -> None:
        if rank != 0 or preview_fn is None:
            return
        model.eval()
        with torch.no_grad():
            images = preview_fn(model)
        model.train()
        if images.dim() == 4:  # a row of previews side by side
            images = torch.cat(list(images), dim=-1)
        save_image(images, out / "previews" / f"step_{step:06d}.jpg")

    end_step = config.steps if stop_after is None else min(config.steps, start_step + stop_after)
    bar = tqdm(total=end_step - start_step, initial=0, desc=f"training (step {start_step}/{config.steps})",
               unit="step", disable=not config.progress or rank != 0, dynamic_ncols=True)
    model.train()
    step = start_step
    images_seen, t0 = 0, time.perf_counter()
    last_checkpoint = t0
    try:
        batches = iter(loader)  # this draws a seed from the generator: an unbroken run did so only at its start
        if rng_state is not None:
            torch.set_rng_state(rng_state)
        for batch in batches:
            if step >= end_step:
                break
            batch = _to_device(batch, device, channels_last)
            for group in optimizer.param_groups:
                group["lr"] = config.lr_at(step)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=use_amp):
                terms = loss_fn(net, batch)
            total = terms["total"]
            if not torch.isfinite(total):
                raise FloatingPointError(f"loss became {float(total)} at step {step}; lower the learning rate "
                                         "or the loss weights (last checkpoint is intact)")
            scaler.scale(total).backward()
            scaler.step(optimizer)
            scaler.update()
            step += 1
            first = batch[0] if isinstance(batch, (tuple, list)) else batch
            images_seen += first.shape[0] * world
            history.append({k: float(v.detach()) for k, v in terms.items()})
            rate = images_seen / max(time.perf_counter() - t0, 1e-9)
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in history[-1].items()} | {"img/s": f"{rate:.1f}"})
            if step % config.preview_every == 0:
                preview(step)
            overdue = time.perf_counter() - last_checkpoint >= 60 * config.checkpoint_minutes
            due = step % config.checkpoint_every == 0 or (config.checkpoint_minutes > 0 and overdue)
            if due and step < end_step:
                checkpoint(step)
                last_checkpoint = time.perf_counter()
    except KeyboardInterrupt:
        checkpoint(step)  # never lose work: Ctrl-C leaves a resumable checkpoint
        bar.close()
        raise
    bar.close()
    seconds = time.perf_counter() - t0
    checkpoint(step)
    model_path = None
    if rank == 0:
        if step >= config.steps:
            preview(step)
            model_path = save_model(model, out / MODEL_NAME, training=info | {
                "steps_done": step, "train_seconds": round(prior_seconds + seconds, 1),
                "hardware": hardware_description(device)})
        names = sorted({k for row in history for k in row})
        lines = ["step," + ",".join(names)] + [
            f"{i + 1}," + ",".join(f"{row.get(n, math.nan):.6g}" for n in names) for i, row in enumerate(history)]
        (out / "history.csv").write_text("\n".join(lines) + "\n")
        (out / "training_info.json").write_text(json.dumps(info | {"steps_done": step}, indent=2))
    return TrainResult(model_path=model_path, history=history, seconds=seconds,
                       images_per_second=images_seen / max(seconds, 1e-9), resumed_from=start_step,
                       steps=config.steps)


# ----------------------------------------------------------------------------- command line

def add_training_arguments(p: Any, *, recipes: dict[str, dict[str, Any]]) -> None:
    """The options every ``train-*`` command shares.

    One place, so ``train-style`` and ``train-sr`` behave the same: ``--recipe`` picks the
    defaults (``paper`` with CUDA, ``cpu`` without) and every option given explicitly overrides
    it; re-running a command resumes from the checkpoint in ``--out`` (``--no-resume`` starts
    afresh); ``--stop-after`` and ``--time-budget`` time-box a call; ``--export`` writes a
    half-precision copy of the final model.
    """
    def show(key: str) -> str:
        return ", ".join(f"{name}: {table.get(key)}" for name, table in recipes.items())

    p.add_argument("--out", required=True, help="run folder: checkpoint, model.safetensors, previews")
    p.add_argument("--recipe", choices=tuple(recipes), help="default settings (default: paper with CUDA, else cpu)")
    p.add_argument("--steps", type=int, help=f"training iterations ({show('steps')})")
    p.add_argument("--time-budget", help="plan --steps from measured speed so the run ends in this time "
                                         "(e.g. 30m, 1h); a resumed run keeps its plan")
    p.add_argument("--batch-size", type=int, help=f"images per step and process ({show('batch_size')})")
    p.add_argument("--lr", type=float, help=f"Adam learning rate ({show('lr')})")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, help=f"learning-rate schedule ({show('lr_schedule')})")
    p.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints")
    p.add_argument("--checkpoint-minutes", type=float, default=10.0,
                   help="also checkpoint when this many minutes passed since the last one, so a crash loses "
                        "at most that much work on a slow machine (default 10; 0: by steps only)")
    p.add_argument("--preview-every", type=int, default=500, help="steps between preview images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, help=f"data loading processes ({show('num_workers')})")
    add_device_option(p)
    p.add_argument("--memory-format", choices=MEMORY_FORMATS, default="auto",
                   help="tensor layout: auto (on a CPU, timed both ways for --time-budget runs and runs of "
                        f"{AUTO_LAYOUT_MIN_STEPS}+ steps; channels-last on CUDA), contiguous or channels-last")
    p.add_argument("--no-amp", action="store_true",
                   help="no mixed precision (default: bf16/fp16 on CUDA, bf16 on CPUs with native bf16)")
    p.add_argument("--no-resume", action="store_true",
                   help="start afresh, overwriting an existing checkpoint in --out (default: resume from it)")
    p.add_argument("--stop-after", type=int, help="stop (resumably) after this many steps of this call")
    p.add_argument("--export", help="also write a half-precision copy of the final model here")
    p.add_argument("--init-from", metavar="MODEL",
                   help="start from this model's weights (a path or a shipped name; same architecture) "
                        "instead of a random initialisation, e.g. x4_pixel for a feature-loss x4 network")
    p.add_argument("--warmup-steps", type=int, default=None, metavar="N",
                   help=f"ramp the learning rate up linearly over the first N steps (default: "
                        f"{FINE_TUNE_WARMUP_STEPS} with --init-from, else 0); softens Adam's first updates "
                        f"when fine-tuning a trained network")
    add_vgg_weights_option(p)
    add_progress_option(p)


def report_training(result: TrainResult, args: Any, kind: str) -> int:
    """After a ``train-*`` command: export the half-precision copy and say what was written."""
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    if result.model_path is None:
        # the history holds every step so far, the resumed ones included
        print(f"stopped at step {len(result.history)} of {result.steps}; run the same command again to resume "
              f"from {Path(args.out) / CHECKPOINT_NAME}")
        return 0
    if args.export:
        model = load_model(result.model_path, kind=kind)
        save_model(model, args.export, training=model.training_info, half=True)
        print(f"half-precision model: {args.export}")
    print(f"model: {result.model_path} ({result.images_per_second:.1f} images/s)")
    return 0
