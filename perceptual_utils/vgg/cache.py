"""A cached loss network per layer set, so repeated runs (a grid of inversions, a widget, the
exercises) load the VGG-16 weights from disk only once."""
from __future__ import annotations

import functools
import os
from collections.abc import Iterable

import torch

from ..config import resolve_device
from .network import LossNetwork, check_layers


@functools.lru_cache(maxsize=8)
def _cached_network(layers: tuple[str, ...], weights: str | None) -> LossNetwork:
    return LossNetwork(list(layers), weights=weights)


def get_loss_network(layers: Iterable[str], weights: str | os.PathLike | None = None,
                     device: torch.device | str | None = None) -> LossNetwork:
    """A frozen VGG-16 tapping ``layers``, cached per layer set and weights file, on ``device``
    (default: :func:`~perceptual_utils.config.default_device`)."""
    layers = tuple(check_layers(layers))
    net = _cached_network(layers, None if weights is None else str(weights))
    return net.to(resolve_device(device))
