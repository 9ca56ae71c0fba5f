"""Where a run trains: the device's description, the data-parallel process group under
``torchrun``, and batches moved to the device in the run's memory layout."""
from __future__ import annotations

import os
import platform
from typing import Any

import torch
import torch.distributed as dist

def hardware_description(device: torch.device) -> str:
    """``"NVIDIA H100 (CUDA)"`` or ``"x86_64 CPU, 2 threads"``: where a model was trained."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    return f"{platform.machine() or 'unknown'} CPU, {torch.get_num_threads()} threads"


def init_distributed() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)``, initialising the process group under ``torchrun`` (NCCL
    with CUDA, gloo without); ``(0, 1, 0)`` outside it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))


def to_device(batch: Any, device: torch.device, channels_last: bool) -> Any:
    """``batch`` (a tensor, or a tuple or list of them) on ``device``; 4-d tensors in channels-last
    layout when ``channels_last``, to match a network converted to it."""
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        return batch.contiguous(memory_format=torch.channels_last) if channels_last and batch.dim() == 4 else batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device, channels_last) for b in batch)
    return batch

