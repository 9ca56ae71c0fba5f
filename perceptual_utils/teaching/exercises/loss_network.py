"""Notebook 00's exercise 1: the ImageNet normalisation VGG-16 expects of its input (torchvision's
``VGG16_Weights.IMAGENET1K_V1`` were trained on images normalised per channel by ImageNet's mean and standard
deviation), checked against :meth:`perceptual_utils.vgg.network.LossNetwork.normalize`."""
from __future__ import annotations

from collections.abc import Callable

import torch

from ...vgg.network import IMAGENET_MEAN, IMAGENET_STD
from .checking import ERROR_SIGNS, CheckResult, factor_hint, register, run_check, tensor_compare
from .inputs import painting, photo, seeded

# ----------------------------------------------------------------------------- 1. ImageNet normalisation


def _stats(values, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype).view(1, 3, 1, 1)


def reference_imagenet_normalisation(images: torch.Tensor) -> torch.Tensor:
    """``(images - mean) / std`` per channel, with ImageNet's RGB mean (0.485, 0.456, 0.406) and standard
    deviation (0.229, 0.224, 0.225), for ``(B, 3, H, W)`` images in [0, 1] (what ``LossNetwork.normalize`` does)."""
    return (images - _stats(IMAGENET_MEAN, images)) / _stats(IMAGENET_STD, images)


NORMALISATION_MISTAKES: dict[str, tuple[str, Callable]] = {
    "no_std": ("you subtracted the mean but did not divide by the standard deviation: (x - mean) / std.",
               lambda x: x - _stats(IMAGENET_MEAN, x)),
    "std_first": ("divide after subtracting: (x - mean) / std, not x / std - mean.",
                  lambda x: x / _stats(IMAGENET_STD, x) - _stats(IMAGENET_MEAN, x)),
    "bgr": ("the statistics are in BGR order (Caffe's VGG); torchvision's weights take RGB: mean (0.485, 0.456, "
            "0.406) for (R, G, B).",
            lambda x: (x - _stats(IMAGENET_MEAN[::-1], x)) / _stats(IMAGENET_STD[::-1], x)),
    "minus_one_to_one": ("that is the [-1, 1] scaling, (x - 0.5) / 0.5; VGG-16 expects ImageNet's per-channel mean "
                         "and standard deviation.", lambda x: (x - 0.5) / 0.5),
    "per_image_stats": ("you normalised by each image's own statistics; use ImageNet's fixed mean and std, the same "
                        "for every image (the network learnt them).",
                        lambda x: (x - x.mean(dim=(2, 3), keepdim=True)) / x.std(dim=(2, 3), keepdim=True)),
    "wrong_broadcast": ("mean and std have shape (3,), which lines up with the image's last axis (width), not its "
                        "channels: reshape them to (1, 3, 1, 1), e.g. torch.tensor(mean).view(1, 3, 1, 1).",
                        lambda x: (x - torch.tensor(IMAGENET_MEAN, dtype=x.dtype)) / torch.tensor(IMAGENET_STD, dtype=x.dtype)),
}
ERROR_SIGNS["wrong_broadcast"] = ("must match the size of tensor b (3) at non-singleton dimension 3",)


def _cases() -> list[tuple[torch.Tensor]]:
    random = [torch.rand(2, 3, 5, 3, generator=seeded(31), dtype=torch.float64),
              torch.rand(1, 3, 4, 7, generator=seeded(32), dtype=torch.float64)]
    return [(x,) for x in random] + [(photo()[None].double(),), (painting()[None].double(),)]


def check_imagenet_normalisation(fn: Callable | None, verbose: bool = True) -> CheckResult:
    """Check ``fn(images) -> normalised``: ``(B, 3, H, W)`` images in [0, 1] normalised per channel by
    ImageNet's mean and standard deviation (reference: :func:`reference_imagenet_normalisation`, the same as
    ``LossNetwork.normalize``)."""
    return run_check("imagenet_normalisation", fn, reference_imagenet_normalisation, _cases(), NORMALISATION_MISTAKES,
                     tensor_compare, "4 inputs (random images of 2 shapes, a photo, a painting)",
                     explain=lambda g, w, c: factor_hint(g, w, "(x - mean) / std"), verbose=verbose)


register(1, "imagenet_normalisation", check_imagenet_normalisation, reference_imagenet_normalisation, """
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)   # one value per channel (R, G, B)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (images - mean) / std
""")
