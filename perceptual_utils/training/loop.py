"""The training loop shared by the style-transfer and super-resolution networks.

One loop for both tasks: Adam, a tqdm bar with the loss terms and images/s, previews every N
steps, checkpoints written atomically every N steps (and on Ctrl-C), exact resume, mixed
precision and channels-last on CUDA, and data-parallel training under ``torchrun``.

Exact resume works because the data of every step is a pure function of the step number
(:class:`~perceptual_utils.training_data.StepSampler`), and the checkpoint holds the model, the
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
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..config import autocast_dtype, resolve_device
from ..images import save_image
from ..model_io import ModelFileError, atomic_write, load_checkpoint, save_checkpoint, save_model
from ..run_folder import changed_settings, guard_run_folder
from ..training_data import StepSampler, one_line_warnings
from .hardware import hardware_description, init_distributed, to_device
from .settings import CHECKPOINT_NAME, HISTORY_NAME, INFO_NAME, MODEL_NAME, TrainConfig


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
    rank, world, local_rank = init_distributed()
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
                        pin_memory=cuda, drop_last=False, persistent_workers=False,
                        worker_init_fn=one_line_warnings if config.num_workers else None)
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
            batch = to_device(batch, device, channels_last)
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
        # Atomically, like every file the package writes: a full disk keeps the previous copies whole.
        history_text = "\n".join(lines) + "\n"
        info_text = json.dumps(info | {"steps_done": step}, indent=2)
        atomic_write(out / HISTORY_NAME, lambda tmp: Path(tmp).write_text(history_text))
        atomic_write(out / INFO_NAME, lambda tmp: Path(tmp).write_text(info_text))
    return TrainResult(model_path=model_path, history=history, seconds=seconds,
                       images_per_second=images_seen / max(seconds, 1e-9), resumed_from=start_step,
                       steps=config.steps)
