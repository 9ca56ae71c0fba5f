"""Configuration in one place: environment variables, the data root, run profiles, device, seeding.

Environment variables
---------------------
``PERCEPTUAL_UTILS_WEIGHTS``  path to the VGG-16 weights (``.safetensors`` or torchvision ``.pth``).
``PERCEPTUAL_UTILS_DATA``     data root laid out as ``styles/``, ``content/``, ``sr/``, ``train/``.
``PERCEPTUAL_UTILS_PROFILE``  ``quick`` | ``standard`` | ``paper`` (see :class:`Profile`).
``PERCEPTUAL_UTILS_THREADS``  CPU threads of the compute commands (see :func:`set_threads`).
"""
from __future__ import annotations

import os
import platform
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

ENV_WEIGHTS = "PERCEPTUAL_UTILS_WEIGHTS"
ENV_DATA = "PERCEPTUAL_UTILS_DATA"
ENV_PROFILE = "PERCEPTUAL_UTILS_PROFILE"
ENV_THREADS = "PERCEPTUAL_UTILS_THREADS"

#: The repository root (one level above the package); ``data/`` lives here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("quick", "standard", "paper")

T = TypeVar("T")


class ConfigError(ValueError):
    """A setting (environment variable or argument) has a value we cannot use."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$PERCEPTUAL_UTILS_DATA``, else the project's ``data/``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser()
    return PROJECT_ROOT / "data"


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a :class:`torch.device` (``None``: :func:`default_device`), with a clear
    :class:`ConfigError` for a name torch does not know or a CUDA device this machine lacks."""
    if device is None or device == "":
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but CUDA is not available on this machine; use cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """Threads when none are asked for: one core fewer than this process may use (at least one).

    Why not all cores (torch's default): when another process holds a core (a notebook kernel,
    a second run, CI), every parallel region waits for the thread that shares its core, and
    throughput collapses; one thread per free core does not. Measured on the shared 2-core AVX2
    machine by ``benchmarks/threads.py`` (``benchmarks/results/threads.json``, README "Threads").
    """
    return max(1, available_cores() - 1)


def resolve_threads(threads: int | None = None) -> int:
    """``threads`` if given, else ``$PERCEPTUAL_UTILS_THREADS``, else :func:`default_threads`.

    Raises:
        ConfigError: a count below 1 or an environment value that is not an integer.
    """
    if threads is None:
        env = os.environ.get(ENV_THREADS, "").strip()
        if not env:
            return default_threads()
        try:
            threads = int(env)
        except ValueError:
            raise ConfigError(f"{ENV_THREADS}={env!r} is not a number of threads (an integer >= 1)") from None
        if threads < 1:
            raise ConfigError(f"{ENV_THREADS}={env!r}: the number of threads must be at least 1")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"the number of threads must be an integer >= 1, got {threads!r}")
    return threads


def set_threads(threads: int | None = None) -> int:
    """Set torch's CPU threads to :func:`resolve_threads` ``(threads)`` and return the count.

    The command line calls it for every compute command (``--threads N``); notebooks and scripts
    call it themselves (``perceptual_utils.config.set_threads()`` for the measured default)."""
    n = resolve_threads(threads)
    torch.set_num_threads(n)
    return n


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16), so bf16 autocast
    is a speed-up there; elsewhere bf16 is emulated and slower than float32."""
    flags = _cpu_flags()
    if flags:  # Linux: the CPU says what it has
        return bool({"avx512_bf16", "amx_bf16"} & flags)
    try:  # elsewhere: ask oneDNN
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def machine_description(threads: int | None = None) -> str:
    """One line naming the machine a benchmark ran on, for its JSON: architecture, native bf16 (which
    decides whether training runs in bf16 autocast, so results from the two kinds differ), threads, torch."""
    bf16 = " with native bf16" if cpu_has_native_bf16() else ""
    threads = torch.get_num_threads() if threads is None else threads
    return f"{platform.machine()} CPU{bf16}, {threads} threads, torch {torch.__version__}"


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision dtype training uses on ``device``, or ``None`` for float32.

    CUDA: bfloat16 where supported, else float16. CPU: bfloat16 only with native support
    (measured on a 2-core AMX CPU: a style training step at 128 px is 2.4x faster in bf16
    autocast; see ``benchmarks/train_throughput.py``), float32 elsewhere.
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


@dataclass(frozen=True)
class Profile:
    """A run profile: how big everything is.

    ``quick``: CI, tiny images and few iterations, minutes on 2 CPU cores.
    ``standard``: a laptop CPU, meaningful pictures in minutes.
    ``paper``: a GPU, the paper's sizes and iteration counts.

    Code that needs a size asks the profile with :meth:`pick`, so switching profile never
    means editing a cell::

        SIZE = profile.pick(quick=64, standard=256, paper=512)
    """

    name: str

    def pick(self, *, quick: T, standard: T, paper: T) -> T:
        """Return the value for this profile."""
        return {"quick": quick, "standard": standard, "paper": paper}[self.name]

    @property
    def device(self) -> torch.device:
        return default_device()

    def __str__(self) -> str:
        return self.name


def get_profile(name: str | None = None) -> Profile:
    """The active profile: ``name``, else ``$PERCEPTUAL_UTILS_PROFILE``, else ``paper`` with CUDA
    and ``standard`` without."""
    name = name or os.environ.get(ENV_PROFILE) or ("paper" if torch.cuda.is_available() else "standard")
    name = name.strip().lower()
    if name not in PROFILES:
        raise ConfigError(f"{ENV_PROFILE}={name!r} is not a profile; choose one of {', '.join(PROFILES)}")
    return Profile(name)


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); returns a CPU generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
