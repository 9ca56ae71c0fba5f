"""The super-resolution network (Johnson et al. 2016, supplementary material, Table 2).

For an upsampling factor ``f`` the network works on the low-resolution image itself::

    c9s1-64 -> 4 x R64 -> log2(f) x u64 -> c9s1-3 -> scaled tanh

``c9s1-64``: 9x9 conv, stride 1, 64 filters; ``R64``: a residual block of two 3x3 convs;
``u64``: a 3x3 conv with stride 1/2 (transposed conv), each doubling the size. Batch norm + ReLU
after every conv except the output layer. A 72x72 input gives 288x288 at x4 and a 36x36 input
gives 288x288 at x8.

Padding
-------
The paper's table keeps every map of the SR network at the input's size (64 x 72 x 72 through
the residual blocks), unlike its style network, which uses unpadded residual blocks and a 40 px
input padding. We keep the size by padding every conv with *reflection* (``padding="reflect"``)
rather than zeros: a zero border looks like a dark frame to the first 9x9 conv, and super-resolved
images are compared pixel by pixel right up to ``scale`` pixels from the edge, and tiled inference
(:mod:`perceptual_utils.tiling`) stitches tile borders into the image interior, so border pixels
should be treated like interior ones. ``padding="zeros"`` is available for comparison.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..blocks import NORMS, UPSAMPLES, ConvLayer, ResidualBlock, ScaledTanh, UpsampleLayer
from .degradation import bicubic_upsample

SCALES = (2, 4, 8)
PADDINGS = ("reflect", "zeros")
VARIANTS = ("paper", "modern")

#: Options each variant implies (all can be overridden individually).
VARIANT_DEFAULTS: dict[str, dict[str, Any]] = {
    # The supplementary's network: batch norm, stride-1/2 convs, scaled tanh output.
    "paper": {"norm": "batch", "upsample": "transposed", "global_residual": False},
    # EDSR (Lim et al. 2017) dropped batch norm from SR networks (it normalises away the image's
    # own contrast and costs memory); nearest-neighbour + conv avoids checkerboards (Odena et
    # al. 2016); VDSR (Kim et al. 2016) learns only the residual over the bicubic upsampling,
    # and with the last layer zero-initialised the untrained network *is* bicubic, so training
    # can only add detail and a few CPU minutes already beat bicubic.
    "modern": {"norm": "none", "upsample": "nearest", "global_residual": True},
}


class SuperResolutionNet(nn.Module):
    """Feed-forward super-resolution network: RGB ``(B, 3, h, w)`` in [0, 1] -> ``(B, 3, f*h, f*w)``.

    Args:
        scale: upsampling factor ``f``, one of 2, 4, 8 (``log2(f)`` stride-1/2 convs).
        channels: width of every hidden layer (64 in the paper).
        num_residual: number of residual blocks (4 in the paper).
        norm: ``"batch"`` (paper), ``"instance"`` or ``"none"``; default from ``variant``.
        upsample: ``"transposed"`` (paper: stride-1/2 convs) or ``"nearest"`` (nearest-neighbour
            x2 + conv, which avoids checkerboard artefacts); default from ``variant``.
        padding: ``"reflect"`` (default, see the module docstring) or ``"zeros"``.
        variant: ``"paper"`` (the supplementary's network) or ``"modern"`` (no batch norm,
            nearest-neighbour upsampling + conv, a global residual over bicubic upsampling with
            the last conv zero-initialised, so training starts at bicubic quality).
        global_residual: output ``bicubic(x) + body(x)`` instead of ``scaled_tanh(body(x))``.

    ``.config`` holds the constructor arguments, so ``SuperResolutionNet(**net.config)`` rebuilds
    the same architecture (model files store it).
    """

    def __init__(self, scale: int = 4, channels: int = 64, num_residual: int = 4, norm: str | None = None,
                 upsample: str | None = None, padding: str = "reflect", variant: str = "paper",
                 global_residual: bool | None = None):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
        d = VARIANT_DEFAULTS[variant]
        norm = d["norm"] if norm is None else norm
        upsample = d["upsample"] if upsample is None else upsample
        global_residual = d["global_residual"] if global_residual is None else bool(global_residual)
        if int(scale) != scale or int(scale) not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(map(str, SCALES))}, got {scale!r}")
        if int(channels) < 1 or int(num_residual) < 0:
            raise ValueError(f"channels must be >= 1 and num_residual >= 0, got {channels}, {num_residual}")
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose from {', '.join(NORMS)}")
        if upsample not in UPSAMPLES:
            raise ValueError(f"unknown upsampling {upsample!r}; choose from {', '.join(UPSAMPLES)}")
        if padding not in PADDINGS:
            raise ValueError(f"unknown padding {padding!r}; choose from {', '.join(PADDINGS)}")
        self.config: dict[str, Any] = {"scale": int(scale), "channels": int(channels),
                                       "num_residual": int(num_residual), "norm": norm,
                                       "upsample": upsample, "padding": padding}
        if variant != "paper" or global_residual:  # paper-variant configs stay as older files wrote them
            self.config.update({"variant": variant, "global_residual": global_residual})
        self.global_residual = global_residual
        c = int(channels)
        self.scale = int(scale)
        self.input = ConvLayer(3, c, 9, 1, norm=norm, padding=padding)
        self.residual = nn.Sequential(*[ResidualBlock(c, norm=norm, padding=padding) for _ in range(int(num_residual))])
        self.up = nn.Sequential(*[UpsampleLayer(c, c, norm=norm, mode=upsample, padding=padding)
                                  for _ in range(int(math.log2(self.scale)))])
        if global_residual:
            # The body predicts a correction to bicubic; zero-initialising its last conv makes the
            # untrained network exactly bicubic upsampling.
            last = ConvLayer(c, 3, 9, 1, norm="none", relu=False, padding=padding)
            conv = [m for m in last if isinstance(m, nn.Conv2d)][0]
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
            self.output = nn.Sequential(last)
        else:
            self.output = nn.Sequential(ConvLayer(c, 3, 9, 1, norm="none", relu=False, padding=padding), ScaledTanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, h, w)`` in [0, 1] -> ``(B, 3, scale*h, scale*w)`` in [0, 1]."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"SuperResolutionNet expects RGB images shaped (B, 3, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if self.config["padding"] == "reflect" and min(h, w) < 5:
            # Reflection padding by 4 px (the 9x9 convs) needs a side of at least 5 px.
            raise ValueError(f"input of {h}x{w} px is too small; SuperResolutionNet needs at least 5x5 px")
        y = self.output(self.up(self.residual(self.input(x))))
        if not self.global_residual:
            return y
        with torch.autocast(x.device.type, enabled=False):
            base = bicubic_upsample(x.float(), self.scale, clamp=False)
        y = base + y.float()
        # Clamp only at inference: during training the loss must see (and pull back) overshoots.
        return y if self.training else y.clamp(0, 1)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config.items())
