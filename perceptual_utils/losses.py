"""The perceptual losses of Johnson et al. (2016), batched and differentiable.

Notation: ``phi_j(x)`` is the activation of VGG-16 layer ``j`` for image ``x``, of shape
``C_j x H_j x W_j``. Batched functions return the mean over the batch of the per-image loss.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .vgg.network import CONTENT_LAYER, STYLE_LAYERS, LossNetwork, check_layers, require_layers


def _check_same_shape(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if a.shape[1:] != b.shape[1:] or (a.shape[0] != b.shape[0] and b.shape[0] != 1):
        raise ValueError(f"{what}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")


def feature_reconstruction_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``l_feat = ||phi_j(y_hat) - phi_j(y)||_2^2 / (C_j H_j W_j)``, averaged over the batch.

    ``target`` may have batch size 1 (broadcast to ``features``).
    """
    _check_same_shape(features, target, "feature_reconstruction_loss")
    return F.mse_loss(features, target.expand_as(features), reduction="mean")


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """``G_j(x) = psi psi^T / (C_j H_j W_j)`` where ``psi`` is ``phi_j(x)`` reshaped to ``C_j x H_j W_j``.

    Input ``(B, C, H, W)``, output ``(B, C, C)``, symmetric.
    """
    if features.dim() != 4:
        raise ValueError(f"gram_matrix expects (B, C, H, W) features, got {tuple(features.shape)}")
    b, c, h, w = features.shape
    psi = features.reshape(b, c, h * w)
    # Accumulate in float32 even under autocast: the sum over H*W overflows float16.
    psi = psi.float()
    return torch.bmm(psi, psi.transpose(1, 2)) / (c * h * w)


def style_reconstruction_loss(
    features: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    layer_weights: Mapping[str, float] | None = None,
) -> torch.Tensor:
    """``l_style = sum_j w_j ||G_j(y_hat) - G_j(y_s)||_F^2``, averaged over the batch.

    Args:
        features: layer name -> activations ``(B, C, H, W)`` of the image being optimised.
        target_grams: layer name -> Gram matrices ``(1 or B, C, C)`` of the style target.
        layer_weights: optional per-layer weights ``w_j`` (default 1 for every layer).
    """
    total = None
    for name, target in target_grams.items():
        if name not in features:
            raise KeyError(f"style_reconstruction_loss: no features for layer {name!r}")
        gram = gram_matrix(features[name])
        _check_same_shape(gram, target, f"style_reconstruction_loss[{name}]")
        per_image = (gram - target).pow(2).sum(dim=(1, 2))
        term = (1.0 if layer_weights is None else float(layer_weights.get(name, 1.0))) * per_image.mean()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("style_reconstruction_loss: no style layers given")
    return total


def total_variation_loss(images: torch.Tensor) -> torch.Tensor:
    """Total-variation regulariser ``l_TV = mean (x[i+1,j] - x[i,j])^2 + mean (x[i,j+1] - x[i,j])^2``.

    The squared, mean-reduced form (Mahendran & Vedaldi's beta = 2), which encourages spatial
    smoothness; means over pixels keep its scale independent of image size.
    """
    if images.dim() != 4:
        raise ValueError(f"total_variation_loss expects (B, C, H, W), got {tuple(images.shape)}")
    dh = images[:, :, 1:, :] - images[:, :, :-1, :]
    dw = images[:, :, :, 1:] - images[:, :, :, :-1]
    return dh.pow(2).mean() + dw.pow(2).mean()


def pixel_loss(images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel loss ``l_pixel = ||y_hat - y||_2^2 / (C H W)``, averaged over the batch."""
    _check_same_shape(images, target, "pixel_loss")
    return F.mse_loss(images, target.expand_as(images), reduction="mean")


@dataclass(frozen=True)
class LossWeights:
    """The weights of Eq. 1, ``content_weight * l_feat + style_weight * l_style + tv_weight * l_TV``.

    The one place the calibrated defaults live (content 1, style 5, TV 1), for torchvision's
    VGG-16 weights with images in [0, 1] (see README, "Loss weights"); Caffe-VGG weights from
    other projects do not carry over. :class:`PerceptualLoss`, :func:`~perceptual_utils.
    optimization.gatys.gatys_style_transfer` and the trainers take their defaults from here.
    """

    content_weight: float = 1.0
    style_weight: float = 5.0
    tv_weight: float = 1.0

    def updated(self, **given: float | None) -> "LossWeights":
        """A copy with every weight given (not ``None``) replaced, e.g. ``--style-weight`` on top of a recipe's."""
        return replace(self, **{k: float(v) for k, v in given.items() if v is not None})

    def as_dict(self) -> dict[str, float]:
        """``{"content_weight": ..., "style_weight": ..., "tv_weight": ...}`` (keyword arguments of PerceptualLoss)."""
        return {k: float(v) for k, v in asdict(self).items()}


#: The calibrated defaults (:class:`LossWeights` with nothing changed).
DEFAULT_WEIGHTS = LossWeights()


class PerceptualLoss(nn.Module):
    """Weighted sum of feature (content), style and total-variation losses, as in the paper.

    ``loss = content_weight * l_feat[content_layer] + style_weight * l_style[style_layers] + tv_weight * l_TV``

    Style targets (Gram matrices) are computed once by :meth:`set_style`; a fixed content target
    can be cached with :meth:`set_content` (optimisation), or passed to :meth:`forward` per batch
    (training). ``forward`` returns a dict with ``"total"`` and each weighted term
    (``"content"``, ``"style"``, ``"tv"``) for logging.

    Default weights are :class:`LossWeights`' (``PerceptualLoss.from_weights(LossWeights(...))``
    takes them as one object). ``vgg_weights``: the VGG-16 weights file of the loss network built
    when ``loss_network`` is not given (default: resolved as in :mod:`perceptual_utils.vgg.weights`).
    """

    def __init__(
        self,
        content_weight: float = DEFAULT_WEIGHTS.content_weight,
        style_weight: float = DEFAULT_WEIGHTS.style_weight,
        tv_weight: float = DEFAULT_WEIGHTS.tv_weight,
        content_layer: str | None = CONTENT_LAYER,
        style_layers: Sequence[str] = STYLE_LAYERS,
        style_layer_weights: Mapping[str, float] | None = None,
        loss_network: LossNetwork | None = None,
        *,
        vgg_weights: str | None = None,
    ):
        super().__init__()
        self.content_layer = content_layer
        self.style_layers = check_layers(style_layers) if style_layers else []
        needed = list(dict.fromkeys(([content_layer] if content_layer else []) + self.style_layers))
        if loss_network is None:
            loss_network = LossNetwork(needed, weights=vgg_weights)
        require_layers(loss_network, needed)
        self.loss_network = loss_network
        self.content_weight = content_weight
        self.style_weight = style_weight
        self.tv_weight = tv_weight
        self.style_layer_weights = dict(style_layer_weights) if style_layer_weights else None
        self.target_grams: dict[str, torch.Tensor] = {}
        self.content_features: torch.Tensor | None = None

    @classmethod
    def from_weights(cls, weights: LossWeights | None = None, **kwargs) -> "PerceptualLoss":
        """``PerceptualLoss(**weights.as_dict(), **kwargs)``; ``None``: the defaults."""
        return cls(**(weights or DEFAULT_WEIGHTS).as_dict(), **kwargs)

    @property
    def weights(self) -> LossWeights:
        """The current weights as a :class:`LossWeights`."""
        return LossWeights(self.content_weight, self.style_weight, self.tv_weight)

    @torch.no_grad()
    def set_style(self, style_images: torch.Tensor | Sequence[torch.Tensor],
                  blend_weights: Sequence[float] | None = None) -> None:
        """Compute the target Gram matrices once. Several style images are blended by
        ``blend_weights`` (normalised to sum to 1) on their Gram matrices; sizes may differ."""
        if isinstance(style_images, torch.Tensor):
            style_images = [style_images] if style_images.dim() == 3 else list(style_images.unbind(0))
        if not style_images:
            raise ValueError("set_style needs at least one style image")
        blend = [1.0] * len(style_images) if blend_weights is None else [float(w) for w in blend_weights]
        if len(blend) != len(style_images) or sum(blend) <= 0 or min(blend) < 0:
            raise ValueError("blend_weights must be non-negative, one per style image, and not all zero")
        device = next(self.loss_network.buffers()).device
        grams: dict[str, torch.Tensor] = {}
        for image, w in zip(style_images, blend):
            feats = self.loss_network(image.to(device).unsqueeze(0) if image.dim() == 3 else image.to(device))
            for name in self.style_layers:
                g = gram_matrix(feats[name]).mean(0, keepdim=True) * (w / sum(blend))
                grams[name] = g if name not in grams else grams[name] + g
        self.target_grams = grams

    @torch.no_grad()
    def set_content(self, content: torch.Tensor | None) -> None:
        """Cache the content target's features (``None`` clears it)."""
        if content is None or self.content_layer is None:
            self.content_features = None
            return
        self.content_features = self.loss_network(content, layers=[self.content_layer])[self.content_layer].detach()

    def forward(self, images: torch.Tensor, content: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        feats = self.loss_network(images)
        terms: dict[str, torch.Tensor] = {}
        target = None
        if self.content_layer is not None and self.content_weight:
            if content is not None:
                with torch.no_grad():  # the target only needs VGG up to the content layer
                    target = self.loss_network(content, layers=[self.content_layer])[self.content_layer]
            else:
                target = self.content_features
            if target is not None:
                terms["content"] = self.content_weight * feature_reconstruction_loss(
                    feats[self.content_layer], target)
        if self.style_weight and self.target_grams:
            terms["style"] = self.style_weight * style_reconstruction_loss(
                feats, self.target_grams, self.style_layer_weights)
        if self.tv_weight:
            terms["tv"] = self.tv_weight * total_variation_loss(images)
        if not terms:
            raise RuntimeError("PerceptualLoss has nothing to compute: set a content target, a style, or a TV weight")
        terms["total"] = sum(terms.values())
        return terms


# ----------------------------------------------------------------------------- grid jitter

def check_grid_jitter(grid_jitter: int) -> int:
    if isinstance(grid_jitter, bool) or int(grid_jitter) != grid_jitter or grid_jitter < 0:
        raise ValueError(f"grid_jitter must be a non-negative whole number of pixels, got {grid_jitter}")
    return int(grid_jitter)


def jittered_crop(output: torch.Tensor, photo: torch.Tensor, grid_jitter: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(output crop, photo crop)`` for :class:`PerceptualLoss`: both cut by the same
    random offset ``(dy, dx)`` in ``[0, grid_jitter)``, ``grid_jitter`` pixels smaller per side.

    Why: a style network's output has a 4-pixel grid (two stride-2 stages; an SR network's, its
    upsampling stages) and VGG-16 a 2-, 4- and 8-pixel one (its max-pooling before ``relu2_2``,
    ``relu3_3`` and ``relu4_3``). When every crop puts the two grids in the same phase, the network
    can lower the loss with a fixed periodic pattern that VGG sees in the same place every step:
    the checkerboard of the first shipped CPU style models. A random phase per step makes such a
    pattern worth nothing on average. Our A/B (``benchmarks/style_ab.py --compare grid-jitter``):
    8 px cut the checkerboard energy 4.7x (seed 0) and 7x (seed 1) at about the same objective after
    160 steps, but the benefit did not last over 518- and 2,000-step runs (docs/artefacts.md, "Grid
    jitter over longer runs"); :func:`shift_consistency_loss` targets the pattern itself. ``0``: no
    crop (the paper's loss).
    ``output`` and ``photo`` (the content target: the input photo, or the HR image) have one size.
    """
    if grid_jitter <= 0:
        return output, photo
    h, w = photo.shape[-2:]
    if h <= grid_jitter or w <= grid_jitter:
        raise ValueError(f"grid_jitter {grid_jitter} px needs training crops larger than that, got {h}x{w}")
    dy, dx = torch.randint(0, grid_jitter, (2,)).tolist()
    window = (..., slice(dy, h - grid_jitter + dy), slice(dx, w - grid_jitter + dx))
    return output[window], photo[window]


def check_shift_weight(weight: float) -> float:
    """A finite, non-negative shift-consistency weight (see :func:`shift_consistency_loss`)."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
        raise ValueError(f"the shift-consistency weight must be a finite number >= 0, got {weight!r}")
    return float(weight)


def shift_consistency_loss(net: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor,
                           output: torch.Tensor, period: int = 4, margin: int = 8) -> torch.Tensor:
    """Mean squared difference between ``net(shift(x))`` and ``shift(net(x))``, for a random
    shift of the input by ``(dy, dx)`` pixels, ``0 <= dy, dx < period``, not both 0.

    Why: a fully convolutional network with two stride-2 stages is shift-equivariant only for
    shifts that are multiples of 4 px. For other shifts nothing ties its output to the content,
    and the style loss (Gram matrices, blind to where a texture sits) lets it paint a fine
    pattern fixed to its own 4-px grid: the checkerboard energy of our CPU-trained style
    networks. Moving the photo by 1-3 px then changes the output a lot (the shipped
    ``starry_night``: mean squared change 0.012-0.015 on a [0, 1] scale, against 4e-5 for a 4-px
    move), which is also what makes video stylised frame by frame flicker. This term charges for
    exactly that part of the output and leaves content-anchored strokes alone. It is not in the
    paper; it is a training-time regulariser, like the TV term, and it is not part of the
    objective the evaluation scores.

    ``net``: maps a batch to its output (e.g. the network with its style selection bound);
    ``batch``: its inputs ``(B, 3, H, W)``; ``output``: ``net(batch)`` as already computed for
    the main loss (reused, so only the first half of the batch is run again, shifted).
    ``margin`` px are left out at every border, where padding differs between the two passes.
    The shift is drawn from the global torch generator, so an exactly resumed run draws the same.
    """
    h, w = batch.shape[-2:]
    if h <= period + 2 * margin or w <= period + 2 * margin:
        raise ValueError(f"shift consistency needs images larger than {period + 2 * margin} px, got {h}x{w}")
    k = int(torch.randint(1, period * period, (1,)))  # 1..period^2-1: never (0, 0)
    n = max(1, batch.shape[0] // 2)
    return shift_difference(net, batch[:n], output[:n], *divmod(k, period), margin=margin)


def shift_difference(net: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor, output: torch.Tensor,
                     dy: int, dx: int, margin: int = 8) -> torch.Tensor:
    """Mean squared difference between ``net`` of ``batch`` moved by ``(dy, dx)`` px (its first
    rows and columns cut off) and ``output`` (``net(batch)``) moved likewise, ``margin`` px left
    out at every border. Shared by :func:`shift_consistency_loss` (one random move, training) and
    :func:`~perceptual_utils.style.evaluation.shift_inconsistency` (every move, evaluation)."""
    h, w = batch.shape[-2:]
    moved = net(batch[..., dy:, dx:])
    inner = (..., slice(margin, h - dy - margin), slice(margin, w - dx - margin))
    return F.mse_loss(moved[inner].float(), output[..., dy:, dx:][inner].float())
