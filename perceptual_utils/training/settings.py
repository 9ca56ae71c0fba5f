"""Settings of a training run, and where their defaults come from.

- :class:`TrainConfig`: what :func:`~.loop.train_loop` runs with (steps, batch, learning-rate
  schedule and warm-up, checkpoint and preview intervals, precision, memory layout);
- :class:`TrainSettings`: what a trainer (``train_style``, ``train_sr``) is given, ``None`` meaning
  the recipe's value, turned into a :class:`TrainConfig` once the recipe is resolved;
- the recipes' resolution (:func:`resolve_recipe`), the older flat-keyword call style
  (:func:`sort_options`), ``--init-from`` (:func:`initialise_from`), and the settings a run
  folder's checkpoint recorded (:func:`checkpoint_training_info`), which a resumed run keeps
  (``--time-budget``'s durations: :mod:`perceptual_utils.durations`).
"""
from __future__ import annotations

import math
import os
from collections.abc import Collection
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..model_io import ModelFileError, model_kind, read_checkpoint_metadata, tensors_digest
from ..shipped_models import load_model  # --init-from takes a path or a shipped model's name

CHECKPOINT_NAME = "checkpoint.safetensors"
MODEL_NAME = "model.safetensors"
HISTORY_NAME = "history.csv"
INFO_NAME = "training_info.json"
#: What a run writes into its folder (``--out``), besides ``previews/``: ``--export`` may not land on it.
RUN_FILES = (CHECKPOINT_NAME, MODEL_NAME, HISTORY_NAME, INFO_NAME)


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
    #: the trainers measure both for a ``--time-budget`` run (:func:`~.planning.budgeted_plan`) or a
    #: long one (:func:`~.planning.run_layout`) and pass the faster. ``True``/``False``: as given.
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
#: ``--init-from`` this word: start a style network from the shipped single-style network that
#: already scores best on the new painting (:mod:`perceptual_utils.style.nearest`).
INIT_FROM_NEAREST = "nearest"
MEMORY_FORMATS = ("auto", "contiguous", "channels-last")


@dataclass
class TrainSettings:
    """How to train, the same for :func:`~perceptual_utils.style.training.train_style` and
    :func:`~perceptual_utils.sr.training.train_sr`: ``train=TrainSettings(...)`` (or the task's
    subclass, which adds its data settings). ``None`` takes the recipe's value; every value given wins.

    ``recipe``: ``"paper"`` or ``"cpu"`` (default: ``paper`` with CUDA, ``cpu`` without).
    ``time_budget``: e.g. ``"30m"``: plan ``steps`` from the measured seconds per step so the
    whole schedule ends on time (a resumed run keeps its plan). ``memory_format``: ``"auto"``
    (measured on a CPU, see :func:`~.planning.budgeted_plan` and :func:`~.planning.run_layout`),
    ``"contiguous"`` or ``"channels-last"``. ``resume``: continue from the run folder's checkpoint
    (exactly). ``stop_after``: stop, resumably, after this many steps of this call.
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
        """The :class:`TrainConfig` of :func:`~.loop.train_loop` for resolved recipe settings ``r``
        (``channels_last``: the layout a :class:`~.planning.BudgetPlan` chose; ``None``, the loop's default;
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


def checkpoint_training_info(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The training settings recorded in ``out_dir``'s checkpoint (``None`` if it has none): what a
    resumed run keeps (its plan, its warm-up) instead of choosing anew."""
    path = Path(out_dir) / CHECKPOINT_NAME
    if not path.is_file():
        return None
    return read_checkpoint_metadata(path).get("extra", {}).get("training_info", {})

