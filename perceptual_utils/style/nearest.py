"""``--init-from nearest``: a quick way to a new painting is to fine-tune the shipped
single-style network that is already closest to it.

A trained network already knows how to keep a photo's content; between paintings mostly the
textures and colours differ. So a new painting's network starts best from the shipped network
whose output already scores lowest on the *new* painting's objective (the same perceptual loss
the run trains on, over a few of its own training crops). It trains every weight at the cpu
recipe's learning rate: twice it scored 1 Gatys-equivalent iteration more on ``udnie`` but 1.5
fewer on ``woman_with_hat_matisse``, with 5.7x the checkerboard energy, and 4x it less on
``udnie`` (``benchmarks/results/new_style_lr.json``).

Measured in ``benchmarks/results/new_style.json`` (10 minutes on 2 cores): more Gatys-equivalent
iterations than a new style slot of ``paintings`` (``--add-to``) or training from scratch, on
``udnie`` and ``woman_with_hat_matisse``, but the fine-tune paints black instance-norm "droplets"
that ``--add-to`` does not, so its result is worth a look before it is used.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..shipped_models import list_models, load_model
from ..training.settings import INIT_FROM_NEAREST as NEAREST  # the --init-from value that asks for this

__all__ = ["NEAREST", "nearest_shipped_network"]



def nearest_shipped_network(config: dict, loss_fn: Callable[[nn.Module, torch.Tensor], dict[str, torch.Tensor]],
                            batch: torch.Tensor) -> tuple[str, dict[str, float]]:
    """The shipped single-style network, of the architecture ``config``, whose output on ``batch``
    scores lowest under ``loss_fn`` (the new run's objective), and every candidate's score.

    Raises:
        ValueError: no shipped network has that architecture (e.g. other ``--channels``).
    """
    scores = {}
    with torch.no_grad():
        for shipped in list_models(kind="style_transfer"):
            net = load_model(shipped.path, kind="style_transfer")
            if net.config == config:  # so that its weights fit (multi-style networks have another config)
                scores[shipped.name] = round(float(loss_fn(net.float().eval(), batch)["total"]), 4)
    if not scores:
        raise ValueError("--init-from nearest: no shipped single-style network has this architecture "
                         "(leave out --variant/--channels/--num-residual/--upsample, or name a model file)")
    return min(scores, key=scores.__getitem__), scores
