"""Building blocks shared by the style-transfer and super-resolution networks.

The paper's networks (supplementary material) use conv + batch norm + ReLU, residual blocks of
two 3x3 convs, and fractionally-strided (stride-1/2) convolutions for upsampling. The "modern"
options are the well-known fixes: instance norm, reflection padding inside every conv, and
nearest-neighbour upsampling followed by a conv (no checkerboard artefacts).
"""
from __future__ import annotations

from torch import nn
import torch

NORMS = ("batch", "instance", "none")
UPSAMPLES = ("transposed", "nearest")


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose from {NORMS}")


class ConvLayer(nn.Sequential):
    """Conv (optionally reflection-padded) + norm + optional ReLU.

    ``padding="reflect"`` pads by ``kernel_size // 2`` with reflection, ``"zeros"`` with zeros,
    ``"none"`` leaves the conv unpadded (the paper's residual blocks).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 norm: str = "batch", relu: bool = True, padding: str = "reflect"):
        layers: list[nn.Module] = []
        pad = kernel_size // 2
        if padding == "reflect" and pad:
            layers.append(nn.ReflectionPad2d(pad))
            conv_pad = 0
        elif padding == "zeros":
            conv_pad = pad
        elif padding in ("none", "reflect"):
            conv_pad = 0
        else:
            raise ValueError(f"unknown padding {padding!r}")
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size, stride, conv_pad, bias=norm != "batch"))
        layers.append(make_norm(norm, out_channels))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """Two 3x3 conv layers with a shortcut; no ReLU after the sum (Gross & Wilber's design).

    With ``padding="none"`` (the paper) both convs are unpadded, so the output is 4 px smaller in
    each dimension and the shortcut is centre-cropped to match.
    """

    def __init__(self, channels: int, norm: str = "batch", padding: str = "none"):
        super().__init__()
        self.crop = 2 if padding == "none" else 0
        self.body = nn.Sequential(
            ConvLayer(channels, channels, 3, norm=norm, relu=True, padding=padding),
            ConvLayer(channels, channels, 3, norm=norm, relu=False, padding=padding),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x[..., self.crop:-self.crop, self.crop:-self.crop] if self.crop else x
        return shortcut + self.body(x)


class UpsampleLayer(nn.Sequential):
    """Upsample x2 then norm + ReLU.

    ``mode="transposed"``: a stride-1/2 (transposed) 3x3 conv, as in the paper.
    ``mode="nearest"``: nearest-neighbour x2 then a 3x3 conv (avoids checkerboard artefacts).
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch", mode: str = "transposed",
                 padding: str = "reflect"):
        if mode == "transposed":
            conv = nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1,
                                      bias=norm != "batch")
            super().__init__(conv, make_norm(norm, out_channels), nn.ReLU(inplace=True))
        elif mode == "nearest":
            super().__init__(nn.Upsample(scale_factor=2, mode="nearest"),
                             *ConvLayer(in_channels, out_channels, 3, norm=norm, relu=True, padding=padding))
        else:
            raise ValueError(f"unknown upsampling {mode!r}; choose from {UPSAMPLES}")


class ScaledTanh(nn.Module):
    """Map to [0, 1] with a tanh: ``(tanh(x) + 1) / 2`` (the paper's scaled tanh output)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (torch.tanh(x) + 1.0) / 2.0
