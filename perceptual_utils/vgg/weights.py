"""Finding and reading the VGG-16 ImageNet weights of the loss network.

Resolution order (first that exists wins):

1. an explicit path argument;
2. ``$PERCEPTUAL_UTILS_WEIGHTS``;
3. the project's ``data/weights/vgg16_features.safetensors`` (written by ``python -m perceptual_utils fetch-weights``);
4. torchvision's cache (``<torch hub dir>/checkpoints/vgg16-397923af.pth``);
5. torchvision's own download (needs internet).

Only tensors are ever read: safetensors, or ``torch.load(weights_only=True)`` for ``.pth``.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import torch
from safetensors.torch import load_file
from torchvision.models import VGG16_Weights

from ..config import ENV_WEIGHTS, PROJECT_ROOT

WEIGHTS_FILENAME = "vgg16_features.safetensors"
TORCHVISION_FILENAME = "vgg16-397923af.pth"
#: sha256 of ``vgg16_features.safetensors`` as written by ``fetch-weights``.
WEIGHTS_SHA256 = "7f4a0c5f2aefbc3ca3d791c9364672785c56f1ea567f738f0024c3f3aa2765e3"


class WeightsNotFoundError(FileNotFoundError):
    """No usable VGG-16 weights were found; the message says where we looked and how to fix it."""


def project_weights_path() -> Path:
    return PROJECT_ROOT / "data" / "weights" / WEIGHTS_FILENAME


def torchvision_cache_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILENAME


def candidate_paths(path: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """Where weights may be, in resolution order, as (description, path) pairs."""
    found: list[tuple[str, Path]] = []
    if path is not None:
        found.append(("argument", Path(path).expanduser()))
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        found.append((f"${ENV_WEIGHTS}", Path(env).expanduser()))
    found.append(("project data/weights/", project_weights_path()))
    found.append(("torchvision cache", torchvision_cache_path()))
    return found


def resolve_weights(path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Return the path of the VGG-16 weights to use, downloading through torchvision as a last resort.

    An explicit ``path`` or ``$PERCEPTUAL_UTILS_WEIGHTS`` that does not exist is an error rather
    than silently falling through: the user asked for that file.
    """
    tried = []
    for source, candidate in candidate_paths(path):
        if candidate.is_file():
            return candidate
        if source in ("argument", f"${ENV_WEIGHTS}"):
            raise WeightsNotFoundError(f"VGG-16 weights file from {source} does not exist: {candidate}")
        tried.append(f"{source} ({candidate})")
    if download:
        try:
            VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=True)
            if torchvision_cache_path().is_file():
                return torchvision_cache_path()
        except Exception as exc:  # no internet, hub unreachable, ...
            tried.append(f"torchvision download ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
    raise WeightsNotFoundError(
        "No VGG-16 weights found. Looked in: " + "; ".join(tried) + ". "
        f"Fix: set {ENV_WEIGHTS}=/path/to/{WEIGHTS_FILENAME} (or a torchvision vgg16 .pth), "
        "or run `python -m perceptual_utils fetch-weights`."
    )


@functools.lru_cache(maxsize=4)
def _read_state_dict(path: str, mtime: float) -> dict[str, torch.Tensor]:
    p = Path(path)
    if p.suffix == ".safetensors":
        state = load_file(str(p))
    else:
        state = torch.load(str(p), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{p}: expected a state dict of tensors, got {type(state).__name__}")
    return state


def load_vgg16_features_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read ``features.*`` tensors (float32, prefix stripped) from a weights file.

    Accepts torchvision's full VGG-16 state dict, its ``features.*`` part, or the same keys with
    the ``features.`` prefix already stripped. Raises ``ValueError`` naming the file otherwise.
    """
    p = Path(path)
    try:
        state = _read_state_dict(str(p.resolve()), p.stat().st_mtime)
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"{p}: not a readable weights file ({type(exc).__name__}: {exc})") from None
    features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    if not features:
        features = {k: v for k, v in state.items() if k.split(".")[0].isdigit()}
    if "0.weight" not in features or "28.bias" not in features:
        raise ValueError(f"{p}: does not hold VGG-16 `features.N.*` weights (keys look like {list(state)[:3]})")
    return {k: v.float() for k, v in features.items()}
