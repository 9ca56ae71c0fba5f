"""Style (texture) reconstruction from Gram matrices only (the paper's Fig. 4; Gatys et al.'s texture synthesis)."""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import torch

from ..losses import PerceptualLoss
from ..vgg.network import STYLE_LAYERS, VGG16_STRIDE, LossNetwork, check_layers
from .runner import (STYLE_ADAM_LR, Callback, OptimizationResult, as_image, check_size, loss_network_for,
                     noise_image, run_task)


def synthesize_style(
    style_image: torch.Tensor,
    layers: Sequence[str] | str = STYLE_LAYERS,
    *,
    size: int | tuple[int, int] | None = None,
    iterations: int = 200,
    optimizer: str = "auto",
    lr: float | None = None,
    tv_weight: float = 0.0,
    seed: int = 0,
    frames_at: Iterable[int] | None = None,
    callback: Callback | None = None,
    progress: bool = True,
    loss_network: LossNetwork | None = None,
    weights: str | os.PathLike | None = None,
) -> OptimizationResult:
    """Synthesise a texture from the Gram matrices of ``style_image`` at ``layers`` (style
    reconstruction, the paper's Fig. 4 / Gatys et al.'s texture synthesis), from seeded noise.

    Minimises ``sum_j ||G_j(x) - G_j(y_s)||_F^2`` (+ ``tv_weight * l_TV``). Gram matrices discard
    *where* features occur, so the result keeps colours and textures but not the layout.

    Optimiser. ``"auto"`` (default, :func:`style_optimizer`) is Adam (``lr`` :data:`STYLE_ADAM_LR`)
    when only first-block layers (``relu1_1``, ``relu1_2``) are matched, L-BFGS otherwise. From the
    faint-grey start L-BFGS stalls on the shallowest Gram matrices: matching ``relu1_2`` of Starry
    Night at 128 px, 150 L-BFGS iterations moved the loss only from 1.45 to 1.11 and left a flat grey
    picture, where Adam reaches 9e-4 with the painting's colours. (A stronger start, uniform noise,
    also gets L-BFGS going, 2e-4, but leaves pixel noise in the deep-layer syntheses, which nothing in
    a deep Gram matrix removes.) From ``relu2_2`` on L-BFGS works and reaches about half Adam's loss
    (relu3_3: 0.093 against 0.18) with smoother pictures, so it stays the choice there.

    Args:
        style_image: ``(3, H, W)`` in [0, 1].
        layers: one layer name or several (e.g. the cumulative sets ``STYLE_LAYERS[:k]``).
        size: output size, an int (square) or ``(H, W)``; default: the style image's size.
        optimizer, lr: ``"auto"`` (default), ``"adam"`` (``lr`` default :data:`STYLE_ADAM_LR`) or ``"lbfgs"``.
        The other arguments are as in :func:`invert_features`.
    """
    layers = check_layers(layers)
    optimizer = style_optimizer(layers) if optimizer == "auto" else optimizer
    style_image = as_image(style_image, "style_image")
    check_size(style_image, layers, "style image")
    out_size = tuple(style_image.shape[-2:]) if size is None else ((size, size) if isinstance(size, int) else tuple(size))
    check_size(torch.empty(0, *out_size), layers, "output size")
    net = loss_network_for(layers, loss_network, weights)
    objective = PerceptualLoss(content_weight=0.0, style_weight=1.0, tv_weight=tv_weight,
                               content_layer=None, style_layers=layers, loss_network=net)
    settings = dict(task="style", layers=list(layers), size=list(out_size), iterations=iterations,
                    optimizer=optimizer, lr=lr, tv_weight=tv_weight, seed=seed)
    return run_task(objective, noise_image(out_size, seed), targets=lambda device: objective.set_style(style_image),
                    settings=settings, desc=f"style {'+'.join(layers)}", iterations=iterations,
                    optimizer=optimizer, lr=lr if lr is not None or optimizer.lower() != "adam" else STYLE_ADAM_LR,
                    frames_at=frames_at, callback=callback, progress=progress)



def style_optimizer(layers: Sequence[str] | str) -> str:
    """The optimiser ``"auto"`` picks for a Gram-matrix objective on ``layers``: ``"adam"`` when all of them
    are in VGG-16's first block (where L-BFGS stalls from the faint-grey start), else ``"lbfgs"``."""
    return "adam" if all(VGG16_STRIDE[name] == 1 for name in check_layers(layers)) else "lbfgs"


