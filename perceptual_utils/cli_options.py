"""Options several commands share, spelled one way everywhere.

- ``--no-progress``: no progress bars (``args.progress`` is ``False``). ``--quiet``, the spelling
  some commands used before, still works and is hidden from ``--help``.
- ``--device``: ``cpu``, ``cuda``, ``cuda:1`` (default: CUDA when available); checked by
  :func:`perceptual_utils.validation.check_device` and resolved by
  :func:`perceptual_utils.config.resolve_device`, the one device helper.
- ``--weights``: the VGG-16 weights file of the loss network.
"""
from __future__ import annotations

import argparse


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    """``--no-progress`` (and the hidden, older ``--quiet``) set ``args.progress = False``."""
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    parser.add_argument("--quiet", dest="progress", action="store_false", help=argparse.SUPPRESS)


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")


def add_vgg_weights_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", help="VGG-16 weights file (default: $PERCEPTUAL_UTILS_WEIGHTS / download)")
