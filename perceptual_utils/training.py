"""The training loop shared by the style-transfer and super-resolution networks.

One loop for both tasks: Adam, a tqdm bar with the loss terms and images/s, previews every N
steps, checkpoints written atomically every N steps (and on Ctrl-C), exact resume, mixed
precision and channels-last on CUDA, and data-parallel training under ``torchrun``.

Exact resume works because the data of every step is a pure function of the step number
(:class:`~perceptual_utils.datasets.StepSampler`), and the checkpoint holds the model, the
optimiser state, the step, the RNG state and the loss history.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .datasets import StepSampler
from .images import save_image
from .model_io import ModelFileError, load_checkpoint, save_checkpoint, save_model

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
    preview_every: int = 500
    num_workers: int = 2
    amp: bool = True            # bfloat16/float16 autocast, CUDA only
    channels_last: bool = True  # CUDA only
    device: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "preview_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


@dataclass
class TrainResult:
    """What a run produced: the model file, the loss history (one dict per step) and speed."""

    model_path: Path | None
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    images_per_second: float = 0.0
    resumed_from: int = 0


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
    device = torch.device(config.device) if config.device else (
        torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu"))
    cuda = device.type == "cuda"
    channels_last = config.channels_last and cuda
    out = Path(out_dir)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    info = dict(training_info or {})
    info.update({k: v for k, v in asdict(config).items() if k not in ("device", "progress", "num_workers")})
    # Settings that may change between an interrupted run and its resumption.
    resumable_keys = {"steps", "checkpoint_every", "preview_every", "amp", "channels_last"}

    torch.manual_seed(config.seed)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

    start_step, history = 0, []
    ckpt_path = out / CHECKPOINT_NAME
    if resume and ckpt_path.is_file():
        meta = load_checkpoint(ckpt_path, model, optimizer)
        saved = meta["extra"].get("training_info", {})
        changed = sorted(k for k in set(saved) | set(info)
                         if k not in resumable_keys and saved.get(k) != info.get(k))
        if changed:
            raise ModelFileError(
                f"{ckpt_path}: checkpoint was made with different settings ({', '.join(changed)}); "
                "use another output folder or start afresh without resuming")
        start_step = int(meta["step"])
        names = meta["extra"].get("history_names", [])
        rows = meta["extra_tensors"].get("history")
        if rows is not None:
            history = [dict(zip(names, map(float, r))) for r in rows.tolist()]

    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if cuda else None)

    sampler = StepSampler(start_step, config.steps, config.batch_size, rank, world)
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, num_workers=config.num_workers,
                        pin_memory=cuda, drop_last=False, persistent_workers=False)
    use_amp = config.amp and cuda
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    def checkpoint(step: int) -> None:
        if rank != 0:
            return
        names = sorted({k for row in history for k in row})
        save_checkpoint(ckpt_path, model, optimizer, step,
                        extra={"training_info": info, "history_names": names},
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
    try:
        for batch in loader:
            if step >= end_step:
                break
            batch = _to_device(batch, device, channels_last)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
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
            if step % config.checkpoint_every == 0 and step < end_step:
                checkpoint(step)
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
            model_path = save_model(model, out / MODEL_NAME, training=info | {"steps_done": step})
        names = sorted({k for row in history for k in row})
        lines = ["step," + ",".join(names)] + [
            f"{i + 1}," + ",".join(f"{row.get(n, math.nan):.6g}" for n in names) for i, row in enumerate(history)]
        (out / "history.csv").write_text("\n".join(lines) + "\n")
        (out / "training_info.json").write_text(json.dumps(info | {"steps_done": step}, indent=2))
    return TrainResult(model_path=model_path, history=history, seconds=seconds,
                       images_per_second=images_seen / max(seconds, 1e-9), resumed_from=start_step)


# ----------------------------------------------------------------------------- command line

def add_training_arguments(p: Any, *, steps: int, paper_note: str) -> None:
    """The options every ``train-*`` command shares, with the paper's defaults.

    One place, so ``train-style`` and ``train-sr`` behave the same: re-running a command resumes
    from the checkpoint in ``--out`` (``--no-resume`` starts afresh), ``--stop-after`` time-boxes a
    call, ``--export`` writes a half-precision copy of the final model.
    """
    p.add_argument("--out", required=True, help="run folder: checkpoint, model.safetensors, previews")
    p.add_argument("--steps", type=int, default=steps, help=f"training iterations ({paper_note})")
    p.add_argument("--batch-size", type=int, default=4, help="images per step and process (paper: 4)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (paper: 1e-3)")
    p.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints")
    p.add_argument("--preview-every", type=int, default=500, help="steps between preview images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="data loading processes")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    p.add_argument("--no-resume", action="store_true",
                   help="start afresh, overwriting an existing checkpoint in --out (default: resume from it)")
    p.add_argument("--stop-after", type=int, help="stop (resumably) after this many steps of this call")
    p.add_argument("--export", help="also write a half-precision copy of the final model here")
    p.add_argument("--weights", help="VGG-16 weights file (default: $PERCEPTUAL_UTILS_WEIGHTS / download)")
    p.add_argument("--no-progress", "--quiet", dest="no_progress", action="store_true", help="no progress bar")


def report_training(result: TrainResult, args: Any, kind: str) -> int:
    """After a ``train-*`` command: export the half-precision copy and say what was written."""
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    if result.model_path is None:
        # the history holds every step so far, the resumed ones included
        print(f"stopped at step {len(result.history)} of {args.steps}; run the same command again to resume "
              f"from {Path(args.out) / CHECKPOINT_NAME}")
        return 0
    if args.export:
        from .model_io import load_model

        model = load_model(result.model_path, kind=kind)
        save_model(model, args.export, training=model.training_info, half=True)
        print(f"half-precision model: {args.export}")
    print(f"model: {result.model_path} ({result.images_per_second:.1f} images/s)")
    return 0
