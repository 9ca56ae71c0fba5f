"""The loss network: a frozen VGG-16 that returns the activations of named ReLU layers."""
from __future__ import annotations

import os
from collections.abc import Iterable

import torch
from torch import nn
from torchvision.models import vgg as tv_vgg

from .weights import load_vgg16_features_state, resolve_weights

#: Index of each ReLU in ``torchvision.models.vgg16().features``.
VGG16_RELU_INDEX: dict[str, int] = {
    "relu1_1": 1, "relu1_2": 3,
    "relu2_1": 6, "relu2_2": 8,
    "relu3_1": 11, "relu3_2": 13, "relu3_3": 15,
    "relu4_1": 18, "relu4_2": 20, "relu4_3": 22,
    "relu5_1": 25, "relu5_2": 27, "relu5_3": 29,
}
VGG16_LAYERS: tuple[str, ...] = tuple(VGG16_RELU_INDEX)
#: Downsampling factor of each layer's feature map relative to the input.
VGG16_STRIDE: dict[str, int] = {name: 2 ** (int(name[4]) - 1) for name in VGG16_LAYERS}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

CONTENT_LAYER = "relu2_2"
STYLE_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


def check_layers(layers: Iterable[str]) -> list[str]:
    """Validate layer names, returning them as a list; raises ``ValueError`` naming a bad one."""
    layers = [layers] if isinstance(layers, str) else list(layers)
    if not layers:
        raise ValueError("at least one VGG-16 layer is needed")
    for name in layers:
        if name not in VGG16_RELU_INDEX:
            raise ValueError(f"unknown VGG-16 layer {name!r}; choose from {', '.join(VGG16_LAYERS)}")
    return layers


def require_layers(network: "LossNetwork", layers: Iterable[str], what: str = "loss network") -> None:
    """Raise ``ValueError`` unless ``network`` taps every layer in ``layers`` (the one place this
    is checked: losses, metrics, the optimisation tasks and the SR loss all ask here)."""
    missing = [name for name in ([layers] if isinstance(layers, str) else layers) if name not in network.layers]
    if missing:
        raise ValueError(f"{what} does not tap layers {missing}; it taps {network.layers}")


def min_input_size(layers: Iterable[str]) -> int:
    """Smallest image side for which every requested layer still has a feature map of at least 1x1."""
    return max(VGG16_STRIDE[name] for name in check_layers(layers))


class LossNetwork(nn.Module):
    """Frozen VGG-16 (ImageNet) that maps RGB images in [0, 1] to a dict of ReLU activations.

    The network is truncated after the deepest requested layer, so asking for ``relu2_2`` only
    runs the first eight layers. Normalisation by the ImageNet mean/std happens inside.

    Args:
        layers: ReLU layer names to return, e.g. ``["relu2_2"]`` or :data:`STYLE_LAYERS`.
        weights: path to a weights file, ``None`` to resolve as described in
            :mod:`perceptual_utils.vgg.weights`, or ``"random"`` for an untrained network
            (a teaching control: random features reconstruct much less).
    """

    def __init__(self, layers: Iterable[str] = STYLE_LAYERS, weights: str | os.PathLike | None = None):
        super().__init__()
        self.layers = check_layers(layers)
        deepest = max(VGG16_RELU_INDEX[name] for name in self.layers)
        features = tv_vgg.make_layers(tv_vgg.cfgs["D"], batch_norm=False)[: deepest + 1]
        if isinstance(weights, str) and weights == "random":
            self.weights_path = None
            for m in features.modules():
                if isinstance(m, nn.Conv2d):  # torchvision's own VGG initialisation
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(m.bias)
        else:
            self.weights_path = resolve_weights(weights)
            state = load_vgg16_features_state(self.weights_path)
            keep = {k: v for k, v in state.items() if int(k.split(".")[0]) <= deepest}
            features.load_state_dict(keep)
        self.features = features.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "LossNetwork":
        # The loss network is always in eval mode (VGG-16 has no dropout/BN here, but be explicit).
        return super().train(False)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std

    def forward(self, images: torch.Tensor, layers: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        """Map a batch ``(B, 3, H, W)`` in [0, 1] to ``{layer: (B, C, H', W')}`` in one pass.

        ``layers``: a subset of :attr:`layers` to return; the pass stops after the deepest of
        them. A training step's content target needs only ``relu2_2`` of the input photo, so
        it should not pay for ``relu3_3`` and ``relu4_3`` (about 3/4 of VGG-16's cost up to
        ``relu4_3`` at the same size).
        """
        if images.dim() == 3:
            images = images.unsqueeze(0)
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"LossNetwork expects RGB images shaped (B, 3, H, W), got {tuple(images.shape)}")
        wanted = self.layers if layers is None else check_layers(layers)
        require_layers(self, wanted)
        taps = {VGG16_RELU_INDEX[name]: name for name in wanted}
        last = max(taps)
        need = min_input_size(wanted)
        if min(images.shape[-2:]) < need:
            raise ValueError(
                f"image of {images.shape[-2]}x{images.shape[-1]} px is too small for layer "
                f"{max(wanted, key=VGG16_RELU_INDEX.get)} (needs at least {need} px per side)"
            )
        x = self.normalize(images)
        out: dict[str, torch.Tensor] = {}
        for index, module in enumerate(self.features):
            x = module(x)
            if index in taps:
                out[taps[index]] = x
            if index == last:
                break
        return out
