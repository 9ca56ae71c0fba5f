"""Options several commands share, spelled one way everywhere.

- ``--no-progress``: no progress bars (``args.progress`` is ``False``). ``--quiet``, the spelling
  some commands used before, still works and is hidden from ``--help``.
- ``--device``: ``cpu``, ``cuda``, ``cuda:1`` (default: CUDA when available); checked by
  :func:`perceptual_utils.validation.check_device` and resolved by
  :func:`perceptual_utils.config.resolve_device`, the one device helper.
- ``--weights``: the VGG-16 weights file of the loss network.
- ``--threads``: CPU threads (default: :func:`perceptual_utils.config.default_threads`, one core
  fewer than the machine has; ``$PERCEPTUAL_UTILS_THREADS`` overrides it), set by ``cli.main``.

A command is added with :func:`add_command`: its ``--help`` description is the docstring of the
function that runs it, as in click and typer, so the text a user reads sits on the code it describes.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable


def add_command(subparsers: argparse._SubParsersAction, name: str, run: Callable[[argparse.Namespace], int],
                help: str) -> argparse.ArgumentParser:
    """The sub-parser of command ``name``: ``help`` is its line in the command list, ``run``'s
    docstring its description, and ``args.func = run`` is what :func:`perceptual_utils.cli.main` calls.
    argparse folds the docstring's line breaks and indentation into single spaces, as it does with
    any description (``HelpFormatter``), so it reads as one paragraph."""
    parser = subparsers.add_parser(name, help=help, description=run.__doc__)
    parser.set_defaults(func=run)
    return parser


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    """``--no-progress`` (and the hidden, older ``--quiet``) set ``args.progress = False``."""
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    parser.add_argument("--quiet", dest="progress", action="store_false", help=argparse.SUPPRESS)


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")


def add_vgg_weights_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", help="VGG-16 weights file (default: $PERCEPTUAL_UTILS_WEIGHTS / download)")


def positive_int(text: str) -> int:
    """An ``argparse`` type: an integer >= 1 (a count: threads, iterations, repeats ...)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """``--threads N`` (``args.threads``; ``None``: the environment's or the measured default)."""
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="CPU threads (default: $PERCEPTUAL_UTILS_THREADS, else one fewer than the cores, at "
                             "least 1: measured to hold up when another program is busy, see README 'Threads')")
