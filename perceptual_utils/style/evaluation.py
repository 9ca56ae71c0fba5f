"""How good is a trained style network? The paper's Fig. 5 yardstick, as numbers.

*Gatys-equivalent iterations*: evaluate the training objective (Eq. 1 for one photo:
``content_weight * l_feat + style_weight * l_style + tv_weight * l_TV``, with the weights and the
style image size the network was trained with) on the network's output for a held-out photo,
then run Gatys et al.'s optimisation (L-BFGS, the same objective) and count the iterations it
needs to reach that value. Johnson et al. (Fig. 5) report that their network matches 50-100
iterations. We count from two starts: the photo itself (as Fig. 5 and notebook 04 do) and
uniform noise (as Gatys et al. start). Gatys stops as soon as it passes the network, so a good
network costs more iterations to evaluate than a poor one, and the cap bounds the cost.

*Checkerboard energy*: :func:`~perceptual_utils.style.net.checkerboard_energy` of the output
relative to the photo's own, the signature of uneven upsampling overlap (1.0: none added).

*Flat-bright area*: :func:`flat_bright_area`, the share of the output covered by smooth, bright
patches without brush strokes, where short instance-norm training leaves its "blobs".
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..color import rgb_to_ycbcr
from ..images import gaussian_blur, load_image
from ..losses import PerceptualLoss, shift_difference
from ..optimization.gatys import gatys_style_transfer
from ..shipped_models import load_model  # a path or a shipped model's name
from ..vgg.cache import get_loss_network
from ..vgg.network import CONTENT_LAYER, STYLE_LAYERS
from .net import checkerboard_ratio
from .stylize import stylize

STARTS = ("content", "noise")


@dataclass
class PhotoScore:
    """One held-out photo: the network's objective and where Gatys reaches it from each start."""

    photo: str
    network_objective: float
    checkerboard_ratio: float
    gatys_iterations: dict[str, int | None] = field(default_factory=dict)  # None: not reached within the cap
    gatys_curves: dict[str, list[float]] = field(default_factory=dict)


def style_objective(training: dict[str, Any], loss_network=None,
                    style_index: int | None = None) -> tuple[PerceptualLoss, torch.Tensor]:
    """The objective a network was trained with (weights, layers, style image and size), from
    its model file's training metadata; returns the loss (style set) and the style image.

    A multi-style network records one style image and one style weight per style
    (``"style"`` and ``"style_weights"`` are lists); ``style_index`` picks the one to score."""
    styles = training["style"]
    style_weight = training["style_weight"]
    if isinstance(styles, (list, tuple)):
        if style_index is None:
            raise ValueError(f"a multi-style network ({len(styles)} styles): give style_index")
        if not 0 <= style_index < len(styles):
            raise ValueError(f"style_index {style_index} out of range for {len(styles)} styles")
        style_weight = training.get("style_weights", [style_weight] * len(styles))[style_index]
        styles = styles[style_index]
    elif style_index not in (None, 0):
        raise ValueError(f"style_index {style_index}: a single-style network has only style 0")
    style = Path(styles)
    size = training.get("style_size")
    image = load_image(style, size=size, long_side=True) if size else load_image(style)
    layers = list(training.get("style_layers", STYLE_LAYERS))
    content = training.get("content_layer", CONTENT_LAYER)
    net = loss_network or get_loss_network(list(dict.fromkeys([content] + layers)), device="cpu")
    objective = PerceptualLoss(content_weight=training["content_weight"], style_weight=style_weight,
                               tv_weight=training["tv_weight"], content_layer=content, style_layers=layers,
                               loss_network=net)
    objective.set_style(image)
    return objective, image


def gatys_iterations_to_reach(value: float, photo: torch.Tensor, style: torch.Tensor, objective: PerceptualLoss,
                              start: str = "content", cap: int = 150, seed: int = 0) -> tuple[int | None, list[float]]:
    """L-BFGS iterations of Gatys' method (same objective) until the objective is ``<= value``.

    ``start``: ``"content"`` (the photo) or ``"noise"`` (uniform noise in [0, 1], seeded).
    Returns ``(iterations or None if not reached within cap, objective per iteration)``.
    """
    if start not in STARTS:
        raise ValueError(f"unknown start {start!r}; choose from {', '.join(STARTS)}")
    init: str | torch.Tensor = "content"
    if start == "noise":
        init = torch.rand(photo.shape, generator=torch.Generator().manual_seed(seed))
    reached: list[int] = []

    def stop(k: int, _image: torch.Tensor, losses: dict[str, float]) -> bool:
        if losses["total"] <= value and not reached:
            reached.append(k)
        return bool(reached)

    result = gatys_with_objective(photo, style, objective, cap, init=init, callback=stop)
    return (reached[0] if reached else None), list(result.history["total"])


def gatys_with_objective(photo: torch.Tensor, style: torch.Tensor, objective: PerceptualLoss, iterations: int,
                         init: str | torch.Tensor = "content", callback=None, frames_at=None):
    """Gatys' optimisation with exactly ``objective`` (its weights, layers, loss network and style
    size); ``frames_at``: iterations whose images the result keeps (``result.frames``)."""
    return gatys_style_transfer(
        photo, style, content_weight=objective.content_weight, style_weight=objective.style_weight,
        tv_weight=objective.tv_weight, style_size=max(style.shape[-2:]), init=init, iterations=iterations,
        content_layer=objective.content_layer, style_layers=objective.style_layers,
        loss_network=objective.loss_network, callback=callback, frames_at=frames_at, progress=False)


def score_style_model(model: nn.Module | str | os.PathLike, photos: Sequence[torch.Tensor],
                      names: Sequence[str] | None = None, starts: Sequence[str] = STARTS, cap: int = 150,
                      progress: bool = True, style_index: int | None = None) -> list[PhotoScore]:
    """Score a style network on held-out ``photos`` (each ``(3, S, S)``): its objective, Gatys'
    iterations to match it from each start, and its checkerboard energy relative to the photo.
    ``style_index``: which style of a multi-style network (its objective for that painting)."""
    net = load_model(model, kind="style_transfer") if isinstance(model, (str, os.PathLike)) else model
    objective, style = style_objective(net.training_info, style_index=style_index)
    scores = []
    for i, photo in enumerate(photos):
        name = names[i] if names else f"photo {i + 1}"
        out = stylize(net, photo, style=style_index)
        with torch.no_grad():
            value = float(objective(out[None], content=photo[None])["total"])
        ratio = checkerboard_ratio(out, photo)
        score = PhotoScore(name, value, ratio)
        for start in starts:
            its, curve = gatys_iterations_to_reach(value, photo, style, objective, start=start, cap=cap)
            score.gatys_iterations[start], score.gatys_curves[start] = its, curve
            if progress:
                print(f"  {name}: network {value:.3f}; Gatys from {start}: "
                      + (f"{its} iterations" if its is not None else f"not reached in {cap}"))
        scores.append(score)
    return scores


def gatys_checkerboard_ratio(model: nn.Module | str | os.PathLike, photo: torch.Tensor, iterations: int = 100,
                             style_index: int | None = None) -> float:
    """Checkerboard energy of Gatys' result (L-BFGS from the photo, ``iterations``, the network's
    objective) relative to the photo's: a reference for the network's ratio, since a painting's
    own fine brush texture also puts power at 2- and 4-pixel periods."""
    net = load_model(model, kind="style_transfer") if isinstance(model, (str, os.PathLike)) else model
    objective, style = style_objective(net.training_info, style_index=style_index)
    result = gatys_with_objective(photo, style, objective, iterations)
    return checkerboard_ratio(result.image, photo)


@torch.no_grad()
def shift_inconsistency(model: nn.Module, photo: torch.Tensor, period: int = 4, margin: int = 16,
                        style: int | None = None) -> float:
    """How much the output changes when the photo moves by less than the network's grid: the
    mean squared difference (pixels in [0, 1]) between ``net(shift(photo))`` and
    ``shift(net(photo))`` over every shift ``(dy, dx)`` with ``0 <= dy, dx < period``, not both 0,
    ``margin`` px left out at the borders. 0 for a shift-equivariant network; a pattern fixed to
    the network's 4-px grid (checkerboard) raises it, and so does a video's flicker when frames are
    stylised one by one. See :func:`~perceptual_utils.losses.shift_consistency_loss`."""
    was_training = model.training
    model.eval()  # inference behaviour (instance/batch norm), as stylize uses it
    run = (lambda t: model(t, style=style)) if style is not None else model
    try:
        x = photo[None].float()
        base = run(x)
        values = [float(shift_difference(run, x, base, *divmod(k, period), margin=margin))
                  for k in range(1, period * period)]
    finally:
        model.train(was_training)
    return sum(values) / len(values)


#: :func:`flat_bright_area`'s thresholds: "untextured" is local contrast below this share of the
#: image's median, "bright" is above this quantile of its luma, "solid" is at least this share of
#: a neighbourhood qualifying. Chosen by looking at masks on the shipped networks' outputs: they cover
#: the pale blobs of ``wave`` and of a rejected ``paintings`` stage, and leave brush-stroked skies out.
FLAT_TEXTURE_RATIO, FLAT_BRIGHT_QUANTILE, FLAT_SOLID_SHARE = 0.3, 0.75, 0.8


def flat_bright_mask(image: torch.Tensor, dark: bool = False) -> torch.Tensor:
    """``(H, W)`` bool mask of :func:`flat_bright_area`'s pixels (for pictures of what it counts);
    ``dark``: of :func:`flat_dark_area`'s instead."""
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"flat_bright_mask: expected a (3, H, W) RGB image, got shape {tuple(image.shape)}")
    luma = rgb_to_ycbcr(image.float().clamp(0, 1))[:1]
    detail = luma - gaussian_blur(luma, 1.0)  # what brush strokes and fine texture add
    contrast = gaussian_blur(detail.pow(2), 4.0).sqrt()  # their local RMS over a ~10 px neighbourhood
    flat = contrast < FLAT_TEXTURE_RATIO * contrast.median()
    if dark:
        extreme = luma < torch.quantile(luma.flatten(), 1.0 - FLAT_BRIGHT_QUANTILE)
    else:
        extreme = luma > torch.quantile(luma.flatten(), FLAT_BRIGHT_QUANTILE)
    solid = gaussian_blur((flat & extreme).float(), 3.0) > FLAT_SOLID_SHARE  # patches, not speckle
    return solid[0]


def flat_bright_area(image: torch.Tensor) -> float:
    """Share of a stylised image (``(3, H, W)`` in [0, 1]) that is a smooth, bright patch: the
    pixels in the brightest quarter of its luma whose local contrast (what a sigma = 1 blur takes
    away, RMS over a sigma = 4 neighbourhood) is under 0.3x the image's median, kept where they
    form solid patches. Short instance-norm training paints such patches into skies and water
    ("blobs", the droplets Karras et al. 2020 trace to instance normalisation), and the
    checkerboard energy and the objective do not see them. A painting left genuinely plain there
    counts too, so compare networks on the same photos, not against 0."""
    return float(flat_bright_mask(image).float().mean())


def flat_dark_area(image: torch.Tensor) -> float:
    """:func:`flat_bright_area` for the darkest quarter of the luma: smooth, dark patches, the
    blobs a fine-tune at a high learning rate paints into water and shadows. A photo's own
    night sky counts too, so compare networks on the same photos, not against 0."""
    return float(flat_bright_mask(image, dark=True).float().mean())


def summarise(scores: Sequence[PhotoScore], cap: int) -> dict[str, Any]:
    """Median Gatys-equivalent iterations per start (a photo not reached counts as ``cap``, so
    the median is then a lower bound, marked ``>=``), mean objective and checkerboard ratio."""
    out: dict[str, Any] = {"photos": len(scores),
                           "network_objective_mean": sum(s.network_objective for s in scores) / len(scores),
                           "checkerboard_ratio_mean": sum(s.checkerboard_ratio for s in scores) / len(scores)}
    for start in scores[0].gatys_iterations:
        values = sorted(cap if s.gatys_iterations[start] is None else s.gatys_iterations[start] for s in scores)
        n = len(values)
        median = values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])
        out[f"gatys_iterations_{start}"] = median
        out[f"gatys_iterations_{start}_capped"] = any(s.gatys_iterations[start] is None for s in scores)
        out[f"gatys_iterations_{start}_per_photo"] = [s.gatys_iterations[start] for s in scores]
    return out


def scores_to_json(scores: Sequence[PhotoScore]) -> list[dict[str, Any]]:
    return [{k: v for k, v in asdict(s).items() if k != "gatys_curves"}
            | {"gatys_final": {k: (c[-1] if c else math.nan) for k, c in s.gatys_curves.items()}} for s in scores]
