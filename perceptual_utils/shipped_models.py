"""The trained models shipped in the repository's ``models/`` folder, found by name.

``stylize --model starry_night`` and ``upscale --model x4_feature`` (and every Python function that
takes a model file) accept the name of a shipped model instead of a path; an unknown name is an
error that lists the available ones. :func:`load_model` (``pu.load_model``) is
:func:`perceptual_utils.model_io.load_model` with that name resolution in front: model_io reads
files by path only, so the lower module knows nothing of this one. ``python -m perceptual_utils
models`` lists the models with their model card's one-line summary (stored in each file's metadata,
``training.summary``); ``models/README.md`` holds the full cards (:mod:`perceptual_utils.model_cards`).

``$PERCEPTUAL_UTILS_MODELS`` points at another folder of model files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import model_io
from .config import PROJECT_ROOT
from .model_io import ModelFileError, read_model_metadata

ENV_MODELS = "PERCEPTUAL_UTILS_MODELS"
SUFFIX = ".safetensors"


def models_dir() -> Path:
    """``$PERCEPTUAL_UTILS_MODELS`` or the repository's ``models/``."""
    env = os.environ.get(ENV_MODELS)
    return Path(env).expanduser() if env else PROJECT_ROOT / "models"


@dataclass(frozen=True)
class ShippedModel:
    """A model file in :func:`models_dir`: its name (the file stem), path, kind and one-line summary."""

    name: str
    path: Path
    kind: str
    summary: str


def list_models(kind: str | None = None) -> list[ShippedModel]:
    """The model files in :func:`models_dir` (optionally of one ``kind``), sorted by kind and name.
    Unreadable files are left out (``load_model`` on them gives the precise error)."""
    folder = models_dir()
    found = []
    for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
        try:
            meta = read_model_metadata(path)
        except ModelFileError:
            continue
        if kind is None or meta.get("kind") == kind:
            found.append(ShippedModel(path.stem, path, meta.get("kind", "?"),
                                      str(meta.get("training", {}).get("summary", ""))))
    return sorted(found, key=lambda m: (m.kind, m.name))


def _is_bare_name(text: str) -> bool:
    return bool(text) and os.sep not in text and "/" not in text and not text.endswith(SUFFIX) and "." not in text


def resolve_model(model: str | os.PathLike, kind: str | None = None) -> Path:
    """A model file path: ``model`` itself if it is a file or looks like a path, else the shipped
    model of that name (a folder of that name in the working directory, such as the run folder
    ``x8_pixel`` a shipped model was trained in, does not hide it).

    Raises:
        ModelFileError: a bare name that is not shipped (the message lists the available names).
    """
    path = Path(model).expanduser()
    text = str(model)
    if path.is_file() or not _is_bare_name(text):
        return path
    candidate = models_dir() / f"{text}{SUFFIX}"
    if candidate.is_file():
        return candidate
    if path.exists():  # e.g. a folder: the loader names the problem
        return path
    available = [m.name for m in list_models(kind)]
    what = {"style_transfer": "style", "super_resolution": "super-resolution"}.get(kind or "", "")
    raise ModelFileError(
        f"{text!r} is neither a model file nor a shipped {what + ' ' if what else ''}model; available: "
        + (", ".join(available) if available else f"none (no model files in {models_dir()})"))


def load_model(model: str | os.PathLike, kind: str | None = None,
               device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a network, in eval mode, from a model file or the name of a shipped model
    (:func:`resolve_model`, then :func:`perceptual_utils.model_io.load_model`).

    Raises:
        ModelFileError: an unknown name (the available ones are listed), a missing or corrupted
            file, or a file of another ``kind`` than asked for.
    """
    return model_io.load_model(resolve_model(model, kind), kind=kind, device=device)
