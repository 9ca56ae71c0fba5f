"""The command line: ``python -m perceptual_utils <command> ...``.

Each command lives next to the code it drives: a module listed in :data:`COMMAND_MODULES`
defines ``register_cli(subparsers)``, which adds its sub-parsers and sets ``func`` to a function
``func(args) -> int`` (the exit code). Errors a user can fix are raised as :class:`CLIError` or
as one of the package's own error types (all in :mod:`perceptual_utils.errors`), and printed as
one line, never a traceback (``PERCEPTUAL_UTILS_DEBUG=1`` shows it).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import USER_ERRORS, CLIError  # CLIError: also importable from here, as before

COMMAND_MODULES = (
    "perceptual_utils.download.cli",         # fetch-weights, fetch-data
    "perceptual_utils.optimization.cli",     # gatys, invert
    "perceptual_utils.style.training",       # train-style
    "perceptual_utils.style.stylize",        # stylize
    "perceptual_utils.style.timing",         # bench
    "perceptual_utils.sr.training",          # train-sr
    "perceptual_utils.sr.upscale",           # upscale
    "perceptual_utils.sr.evaluation",        # evaluate-sr
    "perceptual_utils.shipped_models",       # models
)


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line, ``error: ...`` (exit code 2), like
    every other error of the command line (``--help`` still shows the usage). Sub-parsers inherit it."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {self.prog.split(' ', 2)[-1] if ' ' in self.prog else self.prog}: "
                     f"{message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="python -m perceptual_utils",
        description="Perceptual losses for real-time style transfer and super-resolution (Johnson et al. 2016).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register_cli(sub)
    return parser


def _debug() -> bool:
    return os.environ.get("PERCEPTUAL_UTILS_DEBUG", "") not in ("", "0")


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line (its first non-empty line, which names the problem)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if _debug():  # PERCEPTUAL_UTILS_DEBUG=1 shows the full traceback
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except (RuntimeError, MemoryError) as exc:  # e.g. torch out of memory: still one line
        if _debug():
            raise
        print(f"error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return 1
