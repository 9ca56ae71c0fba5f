"""Gatys et al. (2016) style transfer, minimising the feed-forward network's own objective."""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import torch

from ..color import preserve_color as _preserve_color
from ..color import rgb_to_ycbcr
from ..images import resize_long_side, resize_short_side
from ..losses import DEFAULT_WEIGHTS, LossWeights, PerceptualLoss  # noqa: F401  (LossWeights: docstrings)
from ..vgg.network import CONTENT_LAYER, STYLE_LAYERS, LossNetwork, check_layers
from .runner import Callback, OptimizationResult, as_image, check_size, initial_image, loss_network_for, run_task


def _luminance_rgb(image: torch.Tensor, match_to: torch.Tensor | None = None) -> torch.Tensor:
    """The BT.601 luminance as a grey RGB image; with ``match_to``, its mean/std are matched to
    ``match_to``'s luminance (Gatys et al. 2016, "Preserving colour": luminance-only transfer)."""
    y = rgb_to_ycbcr(image)[:1]
    if match_to is not None:
        ref = rgb_to_ycbcr(match_to)[:1]
        y = (y - y.mean()) / (y.std() + 1e-8) * ref.std() + ref.mean()
    return y.clamp(0, 1).expand(3, -1, -1).contiguous()



def gatys_style_transfer(
    content: torch.Tensor,
    style: torch.Tensor | Sequence[torch.Tensor],
    *,
    style_blend_weights: Sequence[float] | None = None,
    content_weight: float | None = None,
    style_weight: float | None = None,
    tv_weight: float | None = None,
    size: int | None = None,
    style_size: int | None = None,
    init: str | torch.Tensor = "content",
    iterations: int = 300,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    preserve_color: bool = False,
    seed: int = 0,
    content_layer: str = CONTENT_LAYER,
    style_layers: Sequence[str] = STYLE_LAYERS,
    frames_at: Iterable[int] | None = None,
    callback: Callback | None = None,
    progress: bool = True,
    loss_network: LossNetwork | None = None,
    weights: str | os.PathLike | None = None,
) -> OptimizationResult:
    """Gatys et al. (2016) style transfer with the feed-forward network's objective.

    Minimises :class:`~perceptual_utils.losses.PerceptualLoss` over the image:
    ``content_weight * l_feat[relu2_2] + style_weight * sum_j l_style[j] + tv_weight * l_TV``.

    Args:
        content: ``(3, H, W)`` in [0, 1].
        style: one style image or several; several are blended on their Gram matrices with
            ``style_blend_weights`` (normalised to sum to 1; default equal).
        content_weight, style_weight, tv_weight: ``None`` uses the calibrated :class:`LossWeights` default.
        size: resize the content so its short side is ``size`` (default: keep its size).
        style_size: resize each style image so its long side is ``style_size`` (default: the
            content's long side, as in Gatys's and Johnson's code; the texture scale follows it).
        init: ``"content"`` (default, converges fastest), ``"noise"`` (seeded) or a tensor.
        iterations, optimizer, lr: the optimisation (L-BFGS default; ``"adam"`` with ``lr``).
        preserve_color: luminance-only transfer: optimise on the luminance of content and style
            (style luminance matched to the content's mean/std), then put the result's luminance
            under the content's colours (Cb/Cr). ``history`` then refers to the luminance problem.
        content_layer, style_layers: default the paper's (and the feed-forward training's).
        frames_at, callback, progress, loss_network, weights: as in :func:`invert_features`.

    Returns:
        An :class:`OptimizationResult` (``image`` at the content's (resized) size).
    """
    content = as_image(content, "content")
    styles = [style] if isinstance(style, torch.Tensor) and style.dim() == 3 else list(style)
    if not styles:
        raise ValueError("gatys_style_transfer needs at least one style image")
    styles = [as_image(s, f"style image {i}") for i, s in enumerate(styles)]
    if size is not None:
        content = resize_short_side(content, int(size))
    style_layers = check_layers(style_layers)
    content_layer = check_layers([content_layer])[0]
    needed = list(dict.fromkeys([content_layer, *style_layers]))
    check_size(content, needed, "content image")
    long_side = int(style_size or max(content.shape[-2:]))
    styles = [resize_long_side(s, long_side) for s in styles]
    for i, s in enumerate(styles):
        check_size(s, style_layers, f"style image {i} (resized to long side {long_side})")
    if preserve_color:
        original = content
        content = _luminance_rgb(content)
        styles = [_luminance_rgb(s, match_to=original) for s in styles]

    net = loss_network_for(needed, loss_network, weights)
    objective = PerceptualLoss.from_weights(
        DEFAULT_WEIGHTS.updated(content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight),
        content_layer=content_layer, style_layers=style_layers, loss_network=net)

    def targets(device: torch.device) -> None:
        objective.set_style([s.to(device) for s in styles], style_blend_weights)
        objective.set_content(content.to(device).unsqueeze(0))

    settings = dict(task="gatys", content_weight=objective.content_weight, style_weight=objective.style_weight,
                    tv_weight=objective.tv_weight, size=list(content.shape[-2:]), style_size=long_side,
                    n_styles=len(styles), style_blend_weights=list(style_blend_weights or []),
                    init=init if isinstance(init, str) else "tensor", iterations=iterations,
                    optimizer=optimizer, lr=lr, preserve_color=preserve_color, seed=seed,
                    content_layer=content_layer, style_layers=list(style_layers))
    result = run_task(objective, initial_image(init, content, content.shape[-2:], seed), targets=targets,
                      settings=settings, desc="gatys", iterations=iterations, optimizer=optimizer, lr=lr,
                      frames_at=frames_at, callback=callback, progress=progress)
    if preserve_color:
        result.image = _preserve_color(result.image, original)
        result.frames = {k: _preserve_color(v, original) for k, v in result.frames.items()}
    return result
