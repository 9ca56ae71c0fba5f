"""The errors a user can fix, and which of them the command line prints as one line.

Command modules raise :class:`CLIError` (or one of the package's own error types) and import it
from here, never from :mod:`perceptual_utils.cli`, which imports the command modules.
"""
from __future__ import annotations

from .config import ConfigError
from .images import ImageLoadError
from .model_io import ModelFileError
from .vgg.weights import WeightsNotFoundError


class CLIError(Exception):
    """An error to report on one line with a non-zero exit code."""


def one_line(text: str) -> str:
    """``text`` with control characters escaped (a newline in a file name becomes ``\\n``), so a
    message that names a file stays on one line; other characters (accents, CJK) are kept."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


#: What ``cli.main`` reports as ``error: <first line>`` (exit code 1) instead of a traceback.
#: OSError: full disk, read-only folder, ...; ValueError includes validation.InvalidArgument.
USER_ERRORS: tuple[type[BaseException], ...] = (CLIError, ConfigError, ImageLoadError, ModelFileError,
                                                 WeightsNotFoundError, OSError, ValueError)

__all__ = ["CLIError", "USER_ERRORS", "one_line", "ConfigError", "ImageLoadError", "ModelFileError", "WeightsNotFoundError"]
