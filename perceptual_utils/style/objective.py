"""The objective a style network trains on: ``loss_fn(model, batch)`` for
:func:`~perceptual_utils.training.loop.train_loop`.

:class:`StyleTransferLoss` scores one style (the paper's Sec. 3 perceptual loss: content at one
VGG-16 layer against the photo itself, Gram matrices against the style image, total variation);
:class:`MultiStyleTransferLoss` one network for several styles, one style per batch (Dumoulin et
al. 2017). Both may score a randomly offset crop of the output (``grid_jitter``) and add the
shift-consistency term (:func:`with_shift_term`), neither of them in the paper.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..losses import PerceptualLoss, check_grid_jitter, check_shift_weight, jittered_crop, shift_consistency_loss


class StyleTransferLoss(nn.Module):
    """``loss_fn(model, batch)`` for :func:`train_loop`: stylise the batch and score it with the
    perceptual loss against the batch itself (content) and the fixed style Gram matrices; with
    ``shift_weight`` > 0 also the shift-consistency term (a ``"shift"`` entry, in the total)."""

    def __init__(self, perceptual: PerceptualLoss, grid_jitter: int = 0, shift_weight: float = 0.0):
        super().__init__()
        self.perceptual = perceptual
        self.grid_jitter = check_grid_jitter(grid_jitter)
        self.shift_weight = check_shift_weight(shift_weight)

    def forward(self, model: nn.Module, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        grams = self.perceptual.target_grams
        # Gram targets are plain tensors, not buffers, so .to(device) does not move them: do it here once.
        if grams and next(iter(grams.values())).device != batch.device:
            self.perceptual.target_grams = {k: v.to(batch.device) for k, v in grams.items()}
        stylised = model(batch)
        output, photo = jittered_crop(stylised, batch, self.grid_jitter)
        return with_shift_term(self.perceptual(output, content=photo), self.shift_weight, model, batch, stylised)


def with_shift_term(terms: dict[str, torch.Tensor], weight: float, net, batch: torch.Tensor,
                    output: torch.Tensor) -> dict[str, torch.Tensor]:
    """``terms`` plus ``"shift"``, ``weight`` times :func:`shift_consistency_loss`, added to the
    total (nothing is added, and no extra pass run, when ``weight`` is 0)."""
    if not weight:
        return terms
    shift = weight * shift_consistency_loss(net, batch, output)
    return terms | {"shift": shift, "total": terms["total"] + shift}


class MultiStyleTransferLoss(nn.Module):
    """``loss_fn(model, (batch, styles))`` for a multi-style network (conditional instance norm):
    the batch is stylised with the style it was drawn for (``styles``: per-image indices, from
    :class:`StyleIndexedDataset`) and scored against that style's Gram targets and style weight.

    One :class:`PerceptualLoss` (one VGG-16) serves all styles: the per-style Gram targets are
    computed once and swapped in per batch, so a step costs the same as with one style.
    """

    def __init__(self, perceptual: PerceptualLoss, target_grams: Sequence[dict[str, torch.Tensor]],
                 style_weights: Sequence[float], grid_jitter: int = 0, shift_weight: float = 0.0):
        super().__init__()
        self.shift_weight = check_shift_weight(shift_weight)
        if len(target_grams) != len(style_weights) or not target_grams:
            raise ValueError("one style weight per style target is needed")
        self.perceptual = perceptual
        self.grid_jitter = check_grid_jitter(grid_jitter)
        self.target_grams = [dict(g) for g in target_grams]
        self.style_weights = [float(w) for w in style_weights]

    def forward(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        images, styles = batch
        s = int(styles[0])
        if bool((styles != s).any()):
            raise ValueError("MultiStyleTransferLoss expects one style per batch")
        grams = self.target_grams[s]
        # Plain tensors, not buffers: move them to the batch's device on first use.
        if next(iter(grams.values())).device != images.device:
            grams = self.target_grams[s] = {k: v.to(images.device) for k, v in grams.items()}
        self.perceptual.target_grams = grams
        self.perceptual.style_weight = self.style_weights[s]
        stylised = model(images, style=styles)
        output, photo = jittered_crop(stylised, images, self.grid_jitter)
        terms = self.perceptual(output, content=photo)
        return with_shift_term(terms, self.shift_weight, lambda x: model(x, style=styles[:x.shape[0]]), images,
                               stylised)
