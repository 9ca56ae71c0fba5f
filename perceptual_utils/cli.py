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
import warnings

from .config import set_threads
from .errors import (USER_ERRORS, CLIError, ConfigError, ImageLoadError, ModelFileError,  # CLIError: also
                     WeightsNotFoundError, one_line)                                      # importable from here
from .validation import InvalidArgument

COMMAND_MODULES = (
    "perceptual_utils.download.cli",         # fetch-weights, fetch-data
    "perceptual_utils.optimization.cli",     # gatys, invert
    "perceptual_utils.style.training",       # train-style
    "perceptual_utils.style.stylize",        # stylize
    "perceptual_utils.style.timing",         # bench
    "perceptual_utils.sr.training",          # train-sr
    "perceptual_utils.sr.upscale",           # upscale
    "perceptual_utils.sr.evaluation",        # evaluate-sr
    "perceptual_utils.model_cards.cli",      # models (list, --cards, --ship)
    "perceptual_utils.export",               # export (ONNX)
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


#: The package's own errors: one-line messages by design, so a line break in one comes from a file
#: name and is escaped (``\\n``) rather than cut there.
_OWN_ERRORS = (CLIError, ConfigError, ImageLoadError, ModelFileError, WeightsNotFoundError, InvalidArgument)


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line: the package's own messages whole with line breaks
    escaped; others (torch, the OS) by their first non-empty line, which names the problem."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if lines and lines[0].startswith("Caught ") and "worker" in lines[0]:
        # torch re-raises a data loader worker's error with the worker's traceback in the message:
        # its last line is "SomeError: the message".
        return one_line(lines[-1].split(": ", 1)[-1]) + " (in a data loader worker)"
    if isinstance(exc, _OWN_ERRORS):
        return one_line(str(exc).strip()) or type(exc).__name__
    return one_line(lines[0]) if lines else type(exc).__name__


def _warnings_note(caught: list[warnings.WarningMessage]) -> str:
    """The distinct warnings (PIL, torch, the data loader ...) as one parenthesised note."""
    seen = list(dict.fromkeys(_one_line(Warning(str(w.message))) for w in caught))
    return f" (warning: {'; '.join(seen)})" if seen else ""


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors a user can fix are one line, ``error: ...``, and the warnings that
    libraries emit meanwhile are folded into that line (or, on success, printed one line each
    after the command) instead of Python's two-line warnings around it."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        try:
            if hasattr(args, "threads"):
                set_threads(args.threads)
            code = int(args.func(args) or 0)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except USER_ERRORS as exc:
            if _debug():  # PERCEPTUAL_UTILS_DEBUG=1 shows the full traceback
                raise
            print(f"error: {_one_line(exc)}{_warnings_note(caught)}", file=sys.stderr)
            return 1
        except (RuntimeError, MemoryError) as exc:  # e.g. torch out of memory: still one line
            if _debug():
                raise
            print(f"error: {type(exc).__name__}: {_one_line(exc)}{_warnings_note(caught)}", file=sys.stderr)
            return 1
    for message in dict.fromkeys(_one_line(Warning(str(w.message))) for w in caught):
        print(f"warning: {message}", file=sys.stderr)
    return code
