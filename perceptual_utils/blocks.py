"""Building blocks shared by the style-transfer and super-resolution networks.

The paper's networks (supplementary material) use conv + batch norm + ReLU, residual blocks of
two 3x3 convs, and fractionally-strided (stride-1/2) convolutions for upsampling. The "modern"
options are the well-known fixes: instance norm, reflection padding inside every conv, and
nearest-neighbour upsampling followed by a conv (no checkerboard artefacts).
"""
from __future__ import annotations

from torch import nn
import torch
import torch.nn.functional as F

NORMS = ("batch", "instance", "none")
UPSAMPLES = ("transposed", "nearest", "bilinear")


class ConditionalInstanceNorm2d(nn.InstanceNorm2d):
    """Conditional instance normalisation (Dumoulin, Shlens & Kudlur 2017): instance norm with
    one scale and shift per style, ``y = gamma_s * (x - mu) / sigma + beta_s``.

    ``weight`` and ``bias`` are ``(num_styles, C)`` (ones and zeros at first). The style is set by
    the owning network before each forward pass (:meth:`set_style`), as either per-image style
    indices (``(B,)`` or ``(1,)`` LongTensor: ``gamma = weight[index]`` exactly) or per-image
    mixing weights over the styles (``(B, N)`` or ``(1, N)``, summing to 1: ``gamma = w @ weight``,
    the convex mix of the styles' scales and shifts; likewise for ``beta``). Without a style set,
    style 0 is used. A subclass of :class:`~torch.nn.InstanceNorm2d` (normalising with each
    input's own statistics), so code that looks for instance norms (e.g. whole-image statistics
    for tiling) finds it; :meth:`modulate` applies the per-style affine part alone.
    """

    def __init__(self, num_features: int, num_styles: int, eps: float = 1e-5):
        super().__init__(num_features, eps=eps, affine=False, track_running_stats=False)
        if int(num_styles) < 1:
            raise ValueError(f"num_styles must be >= 1, got {num_styles}")
        self.num_styles = int(num_styles)
        self.weight = nn.Parameter(torch.ones(self.num_styles, num_features))
        self.bias = nn.Parameter(torch.zeros(self.num_styles, num_features))
        self.style: torch.Tensor | None = None

    def set_style(self, style: torch.Tensor | None) -> None:
        """A LongTensor of style indices ``(B,)``/``(1,)``, a float tensor of mixing weights
        ``(B, N)``/``(1, N)`` (rows summing to 1), or ``None`` (style 0)."""
        self.style = style

    def affine_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``gamma, beta`` of shape ``(B or 1, C)`` for the current style selection."""
        style = self.style
        if style is None:
            return self.weight[:1], self.bias[:1]
        if not style.is_floating_point():
            idx = style.to(self.weight.device)
            return self.weight[idx], self.bias[idx]
        w = style.to(self.weight.device, self.weight.dtype)
        # Broadcast-and-sum (not a matmul): a one-hot row gives exactly that style's gamma and beta.
        return (w[:, :, None] * self.weight[None]).sum(1), (w[:, :, None] * self.bias[None]).sum(1)

    def modulate(self, y: torch.Tensor) -> torch.Tensor:
        """The per-style affine part, applied to an already normalised ``y``."""
        gamma, beta = self.affine_params()
        return y * gamma.to(y.dtype)[:, :, None, None] + beta.to(y.dtype)[:, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.modulate(F.instance_norm(x, eps=self.eps))

    def extra_repr(self) -> str:
        return f"{self.num_features}, num_styles={self.num_styles}, eps={self.eps}"


def make_norm(kind: str, channels: int, num_styles: int = 1) -> nn.Module:
    """A norm layer; ``num_styles > 1`` with ``kind="instance"`` gives a conditional instance norm."""
    if num_styles != 1 and kind != "instance":
        raise ValueError(f"a per-style (conditional) norm needs norm='instance', got norm={kind!r} "
                         f"with num_styles={num_styles}")
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        if num_styles != 1:
            return ConditionalInstanceNorm2d(channels, num_styles)
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
                 norm: str = "batch", relu: bool = True, padding: str = "reflect", num_styles: int = 1):
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
        layers.append(make_norm(norm, out_channels, num_styles))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """Two 3x3 conv layers with a shortcut; no ReLU after the sum (Gross & Wilber's design).

    With ``padding="none"`` (the paper) both convs are unpadded, so the output is 4 px smaller in
    each dimension and the shortcut is centre-cropped to match.
    """

    def __init__(self, channels: int, norm: str = "batch", padding: str = "none", num_styles: int = 1):
        super().__init__()
        self.crop = 2 if padding == "none" else 0
        self.body = nn.Sequential(
            ConvLayer(channels, channels, 3, norm=norm, relu=True, padding=padding, num_styles=num_styles),
            ConvLayer(channels, channels, 3, norm=norm, relu=False, padding=padding, num_styles=num_styles),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x[..., self.crop:-self.crop, self.crop:-self.crop] if self.crop else x
        return shortcut + self.body(x)


class UpsampleLayer(nn.Sequential):
    """Upsample x2 then norm + ReLU.

    ``mode="transposed"``: a stride-1/2 (transposed) 3x3 conv, as in the paper.
    ``mode="nearest"``: nearest-neighbour x2 then a 3x3 conv (avoids the uneven overlap of
    transposed convs; Odena et al. 2016, "Deconvolution and Checkerboard Artifacts").
    ``mode="bilinear"``: bilinear x2 (``align_corners=False``) then a 3x3 conv: no 2x2 blocks of
    copies for the conv to smooth. Measured against nearest in a short CPU run
    (``benchmarks/style_ab.py --compare upsampling``), it leaves the 4-pixel grid nearly as strong and fits the
    objective worse, so the recipes keep nearest; it stays an option to experiment with.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch", mode: str = "transposed",
                 padding: str = "reflect", num_styles: int = 1):
        if mode == "transposed":
            conv = nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1,
                                      bias=norm != "batch")
            super().__init__(conv, make_norm(norm, out_channels, num_styles), nn.ReLU(inplace=True))
        elif mode in ("nearest", "bilinear"):
            resize = nn.Upsample(scale_factor=2, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
            super().__init__(resize,
                             *ConvLayer(in_channels, out_channels, 3, norm=norm, relu=True, padding=padding,
                                        num_styles=num_styles))
        else:
            raise ValueError(f"unknown upsampling {mode!r}; choose from {UPSAMPLES}")


class ScaledTanh(nn.Module):
    """Map to [0, 1] with a tanh: ``(tanh(x) + 1) / 2`` (the paper's scaled tanh output)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (torch.tanh(x) + 1.0) / 2.0
