"""The checkers' test inputs beside random ones: a real photo and painting, and their VGG-16 features.

Real inputs beside the random ones, so a check covers what the notebooks feed (photos, VGG-16 features);
each is computed once per session (``lru_cache``).
"""
from __future__ import annotations

import functools

import torch

from ... import losses
from ...datafiles import example_image
from ...vgg.cache import get_loss_network


@functools.lru_cache(maxsize=1)
def photo(size: int = 32) -> torch.Tensor:
    """A real photo (the data root's chicago.jpg, else scikit-image's astronaut), square ``size`` px."""
    return example_image(kind="content", name="chicago.jpg", size=size)[0]


@functools.lru_cache(maxsize=1)
def painting(size: int = 32) -> torch.Tensor:
    """A real painting (the data root's starry_night_crop.jpg, else scikit-image's chelsea), square ``size`` px."""
    return example_image(kind="styles", name="starry_night_crop.jpg", size=size)[0]


@functools.lru_cache(maxsize=1)
def vgg_features() -> dict[str, dict[str, torch.Tensor]] | None:
    """VGG-16 features of a real photo and a painting at the style layers (None without weights)."""
    try:
        net = get_loss_network(list(losses.STYLE_LAYERS), device="cpu")
    except Exception:  # no weights: the checks run on random inputs only
        return None
    with torch.no_grad():
        return {"photo": net(photo()[None]), "painting": net(painting()[None])}


def seeded(seed: int) -> torch.Generator:
    """A generator of its own, so every case is the same on every run and in every order."""
    return torch.Generator().manual_seed(seed)


def rand(*shape, seed: int, relu: bool = True) -> torch.Tensor:
    """Random float64 features of ``shape``; ``relu``: clamped at 0 like VGG-16's ReLU outputs."""
    x = torch.randn(*shape, generator=seeded(seed), dtype=torch.float64)
    return x.clamp_min(0) if relu else x

