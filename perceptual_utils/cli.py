"""The command line: ``python -m perceptual_utils <command> ...``.

Each command lives next to the code it drives: a module listed in :data:`COMMAND_MODULES`
defines ``register_cli(subparsers)``, which adds its sub-parsers and sets ``func`` to a function
``func(args) -> int`` (the exit code). Errors a user can fix are raised as :class:`CLIError` or
as one of the package's own error types, and printed as one line, never a traceback (``PERCEPTUAL_UTILS_DEBUG=1`` shows it).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMAND_MODULES = (
    "perceptual_utils.fetch",          # fetch-weights, fetch-data
    "perceptual_utils.optimize",       # gatys, invert
    "perceptual_utils.style_training",  # train-style
    "perceptual_utils.stylize",        # stylize
    "perceptual_utils.benchmark",      # bench
    "perceptual_utils.sr_training",    # train-sr
    "perceptual_utils.upscale",        # upscale
    "perceptual_utils.sr_eval",        # evaluate-sr
)


class CLIError(Exception):
    """An error to report on one line with a non-zero exit code."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m perceptual_utils",
        description="Perceptual losses for real-time style transfer and super-resolution (Johnson et al. 2016).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register_cli(sub)
    return parser


def _debug() -> bool:
    return os.environ.get("PERCEPTUAL_UTILS_DEBUG", "") not in ("", "0")


def _user_errors() -> tuple[type[BaseException], ...]:
    from .config import ConfigError
    from .images import ImageLoadError
    from .model_io import ModelFileError
    from .weights import WeightsNotFoundError

    return (CLIError, ConfigError, ImageLoadError, ModelFileError, WeightsNotFoundError, FileNotFoundError, ValueError)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except _user_errors() as exc:
        if _debug():  # PERCEPTUAL_UTILS_DEBUG=1 shows the full traceback
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
