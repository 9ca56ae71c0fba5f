"""Argument checks for the command line, run before any work, each failing with one clear line.

Every check raises :class:`InvalidArgument` (a ``ValueError``), which ``cli.main`` prints as
``error: <message>`` with exit code 1. The message names the option and the value::

    check_finite("--lr", args.lr, minimum=0, inclusive=False)      # --lr inf / nan / 0 / -1
    check_int("--image-size", args.image_size, minimum=16)          # --image-size 0 / -5
    check_int("--stop-after", args.stop_after, minimum=1, optional=True)
    check_device(args.device)                                       # --device bogus / cuda w/o CUDA
    check_output_image(args.output)                                 # --output x.xyz / a folder
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from .images import image_format
from .durations import parse_duration
from .model_io import CONFIG_RANGES

#: The optimisation commands (gatys, invert) refuse working images larger than this many pixels:
#: VGG-16 activations and their gradients cost on the order of a kilobyte per pixel.
MAX_OPTIMIZE_PIXELS = 12_000_000


class InvalidArgument(ValueError):
    """A command-line argument is out of range or malformed (the message names the option)."""


def check_finite(option: str, value: float | None, minimum: float | None = None, inclusive: bool = True,
                 maximum: float | None = None, optional: bool = False) -> float | None:
    """``value`` is a finite number (not inf/nan) within ``[minimum, maximum]`` (``minimum``
    excluded when ``inclusive=False``); ``None`` passes when ``optional``."""
    if value is None:
        if optional:
            return None
        raise InvalidArgument(f"{option} is required")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{option} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InvalidArgument(f"{option} must be a finite number, got {value!r}")
    if minimum is not None and (number < minimum or (not inclusive and number == minimum)):
        relation = ">=" if inclusive else ">"
        raise InvalidArgument(f"{option} must be {relation} {minimum:g}, got {value!r}")
    if maximum is not None and number > maximum:
        raise InvalidArgument(f"{option} must be <= {maximum:g}, got {value!r}")
    return number


def check_int(option: str, value: int | None, minimum: int | None = None, maximum: int | None = None,
              optional: bool = False, zero_ok: bool = False) -> int | None:
    """``value`` is an integer in ``[minimum, maximum]``; ``zero_ok`` also accepts 0 (an "off"
    value such as ``--tile 0``); ``None`` passes when ``optional``."""
    if value is None:
        if optional:
            return None
        raise InvalidArgument(f"{option} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise InvalidArgument(f"{option} must be an integer, got {value!r}")
    if zero_ok and value == 0:
        return 0
    if minimum is not None and value < minimum:
        extra = " (or 0)" if zero_ok else ""
        raise InvalidArgument(f"{option} must be at least {minimum}{extra}, got {value}")
    if maximum is not None and value > maximum:
        raise InvalidArgument(f"{option} must be at most {maximum}, got {value}")
    return value


def check_device(device: str | None, option: str = "--device") -> str | None:
    """A torch device string that exists on this machine (``None``: the default device).

    ``bogus`` -> "not a device"; ``cuda`` / ``cuda:3`` without CUDA (or that GPU) and ``mps``
    without MPS -> "not available".
    """
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise InvalidArgument(f"{option} {device!r} is not a device; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidArgument(f"{option} {device}: CUDA is not available on this machine; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InvalidArgument(f"{option} {device}: there are only {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise InvalidArgument(f"{option} {device}: MPS is not available on this machine; use --device cpu")
    elif dev.type != "cpu":
        raise InvalidArgument(f"{option} {device!r}: unsupported device type; use cpu, cuda, cuda:N or mps")
    return device


def check_output_image(path: str | os.PathLike, option: str = "--output") -> Path:
    """An output image file name: a known image extension, not an existing folder, and a folder
    that exists (or can be created) and is writable."""
    p = Path(path)
    if p.is_dir():
        raise InvalidArgument(f"{option} {p}: is an existing folder; give an image file name such as {p / 'out.png'}")
    try:
        image_format(p)
    except ValueError as exc:
        raise InvalidArgument(f"{option} {exc}") from None
    check_writable_folder(p.parent, option)
    return p


def check_writable_folder(folder: str | os.PathLike, option: str = "--output") -> Path:
    """``folder`` exists and is writable, or does not exist and can be created under a writable
    folder; an existing *file* in its place is refused."""
    p = Path(folder) if str(folder) else Path(".")
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise InvalidArgument(f"{option}: {probe} is a file, not a folder")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise InvalidArgument(f"{option}: folder {probe} is not writable")
    return p


def check_input_path(option: str, path: str | os.PathLike, folder: bool = False) -> Path:
    """An input file (or folder with ``folder=True``) that exists."""
    p = Path(path)
    if not p.exists():
        raise InvalidArgument(f"{option} {p}: no such {'folder' if folder else 'file'}")
    if folder and not p.is_dir():
        raise InvalidArgument(f"{option} {p}: is a file, not a folder")
    if not folder and p.is_dir():
        raise InvalidArgument(f"{option} {p}: is a folder, not a file")
    return p


def check_same_file(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Refuse writing ``target`` when it is the same file as ``source`` (it would destroy the input)."""
    s, t = Path(source), Path(target)
    if s.exists() and (s.resolve() == t.resolve() or (t.exists() and os.path.samefile(s, t))):
        raise InvalidArgument(f"{t}: output would overwrite the input file {s}; choose another --output")


def check_pixels(what: str, height: int, width: int, limit: int = MAX_OPTIMIZE_PIXELS, hint: str = "") -> None:
    """Refuse a working image larger than ``limit`` pixels before allocating anything."""
    if height * width > limit:
        raise InvalidArgument(f"{what} of {width}x{height} px ({height * width / 1e6:.1f} MP) exceeds the "
                              f"{limit / 1e6:g} MP this command handles{hint}")


def check_training_args(args) -> None:
    """Check the options of ``train-style`` / ``train-sr`` (an ``argparse.Namespace``) before any
    work; options a command does not have are skipped. ``--lr inf``, ``--style-weight nan``,
    ``--image-size 0``, ``--stop-after -1``, ``--patch 0``, ``--device bogus`` ... fail here."""
    get = lambda name: getattr(args, name, None)  # noqa: E731
    check_finite("--lr", get("lr"), minimum=0, inclusive=False, optional=True)
    for name in ("content_weight", "style_weight", "tv_weight", "sigma", "shift_weight"):
        check_finite("--" + name.replace("_", "-"), get(name), minimum=0, optional=True)
    check_finite("--fine-tune-fraction", get("fine_tune_fraction"), minimum=0, maximum=1, optional=True)
    for name, minimum in (("steps", 1), ("stop_after", 1), ("batch_size", 1), ("checkpoint_every", 1),
                          ("preview_every", 1), ("image_size", 16), ("fine_tune_size", 16),
                          ("workers", 0), ("warmup_steps", 0), ("grid_jitter", 0), ("threads", 1)):
        check_int("--" + name.replace("_", "-"), get(name), minimum=minimum, optional=True)
    # The network's size within the limits every loader enforces (model_io.CONFIG_RANGES): a run
    # with --num-residual 65 would train for hours and write a model no command can load.
    for name in ("channels", "num_residual"):
        lo, hi = CONFIG_RANGES[name]
        check_int("--" + name.replace("_", "-"), get(name), minimum=lo, maximum=hi, optional=True)
    if get("style_size"):  # 0 keeps the style image's own size
        check_int("--style-size", get("style_size"), minimum=16)
    if get("time_budget") is not None:
        try:
            parse_duration(get("time_budget"))
        except ValueError as exc:
            raise InvalidArgument(f"--time-budget: {exc}") from None
    scale = get("scale") if isinstance(get("scale"), int) else 1
    check_int("--patch", get("patch"), minimum=max(16, 8 * scale), optional=True)
    check_device(get("device"))


__all__ = ["InvalidArgument", "check_training_args", "MAX_OPTIMIZE_PIXELS", "check_finite", "check_int", "check_device",
           "check_output_image", "check_writable_folder", "check_input_path", "check_same_file", "check_pixels"]
