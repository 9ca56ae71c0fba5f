"""Feature inversion (Mahendran & Vedaldi; the paper's Fig. 3): which image has these VGG-16 features?"""
from __future__ import annotations

import os
from collections.abc import Iterable

import torch

from ..losses import PerceptualLoss
from ..vgg.network import LossNetwork, check_layers
from .runner import Callback, OptimizationResult, as_image, check_size, initial_image, loss_network_for, run_task


def invert_features(
    image: torch.Tensor,
    layer: str,
    *,
    iterations: int = 200,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    tv_weight: float = 0.0,
    init: str | torch.Tensor = "noise",
    seed: int = 0,
    frames_at: Iterable[int] | None = None,
    callback: Callback | None = None,
    progress: bool = True,
    loss_network: LossNetwork | None = None,
    weights: str | os.PathLike | None = None,
) -> OptimizationResult:
    """Reconstruct an image from its VGG-16 features at ``layer`` (the paper's Fig. 3).

    Minimises ``l_feat = ||phi_j(x) - phi_j(y)||^2 / (C_j H_j W_j)`` (+ ``tv_weight * l_TV``) over
    the image ``x``, starting from seeded noise.

    Args:
        image: the target ``y``, ``(3, H, W)`` in [0, 1].
        layer: a ReLU layer name, e.g. ``"relu2_2"``.
        iterations: number of updates; optimizer ``"lbfgs"`` (default) or ``"adam"`` (``lr``).
        tv_weight: weight of the total-variation regulariser (0: none).
        init: ``"noise"`` (seeded), ``"content"`` (the target itself, a sanity check) or a tensor.
        frames_at: iterations at which to keep a copy of the image (e.g. for an animation).
        callback: see :data:`Callback`; progress: show a tqdm bar.
        loss_network: a :class:`LossNetwork` tapping ``layer`` (default: a cached one).

    Raises:
        ValueError: unknown layer/optimiser, or an image too small for ``layer``.
    """
    layer = check_layers([layer])[0]
    image = as_image(image, "image")
    check_size(image, [layer], "image")
    net = loss_network_for([layer], loss_network, weights)
    objective = PerceptualLoss(content_weight=1.0, style_weight=0.0, tv_weight=tv_weight,
                               content_layer=layer, style_layers=[], loss_network=net)
    settings = dict(task="invert", layer=layer, iterations=iterations, optimizer=optimizer, lr=lr,
                    tv_weight=tv_weight, init=init if isinstance(init, str) else "tensor", seed=seed)
    return run_task(objective, initial_image(init, image, image.shape[-2:], seed),
                    targets=lambda device: objective.set_content(image.to(device).unsqueeze(0)),
                    settings=settings, desc=f"invert {layer}", iterations=iterations, optimizer=optimizer,
                    lr=lr, frames_at=frames_at, callback=callback, progress=progress)


