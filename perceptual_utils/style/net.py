"""The image transformation network for style transfer (Johnson et al. 2016, supplementary Table 1).

``variant="paper"`` is exactly the supplementary's network::

    reflection pad 40 -> c9s1-32 -> d64 -> d128 -> 5 x R128 (unpadded) -> u64 -> u32 -> c9s1-3 -> scaled tanh

``c9s1-32``: 9x9 conv, stride 1, 32 filters; ``d64``: 3x3 conv, stride 2; ``u64``: 3x3 conv with
stride 1/2 (transposed conv); ``R128``: a residual block of two *unpadded* 3x3 convs whose
shortcut is centre-cropped by 2 px. Batch norm + ReLU after every conv except the output layer.
Each residual block shrinks the quarter-resolution map by 4 px, so five blocks lose 20 px there,
i.e. 80 px at full resolution: the 40 px reflection padding at the input pays for exactly that,
and the output has the input's size.

``variant="modern"`` applies the well-known fixes (Ulyanov et al.'s instance norm; Odena et al.'s
nearest-neighbour upsampling + conv instead of transposed convs, which removes checkerboard
artefacts; reflection padding inside every conv, so no big input padding is needed). Both
variants are the same class with different options; every option can also be set by hand.

Sizes that are not multiples of 4
---------------------------------
The two stride-2 convs divide the size by 4 and the two stride-1/2 convs multiply it by 4, so an
``H x W`` input with ``H`` or ``W`` not a multiple of 4 would come back up to 3 px larger (or
misaligned). We therefore reflection-pad the *bottom/right* edge up to the next multiple of 4
before the network and crop the same pixels off the output. The top-left corner stays anchored,
so output pixel ``(i, j)`` always corresponds to input pixel ``(i, j)``, for odd sizes too. Inputs
smaller than 8 px are padded to 8 px (a reflection-padded conv needs a map larger than its padding).
"""
from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks import ConditionalInstanceNorm2d, ConvLayer, ResidualBlock, ScaledTanh, UpsampleLayer

VARIANTS = ("paper", "modern")

#: Options each variant implies (all can be overridden individually).
VARIANT_DEFAULTS: dict[str, dict[str, str]] = {
    "paper": {"norm": "batch", "upsample": "transposed", "padding": "zeros", "residual_padding": "none"},
    "modern": {"norm": "instance", "upsample": "nearest", "padding": "reflect", "residual_padding": "reflect"},
}


def reflect_pad(x: torch.Tensor, left: int, right: int, top: int, bottom: int) -> torch.Tensor:
    """Reflection padding that also works when the padding exceeds the image size.

    ``F.pad(mode="reflect")`` needs ``pad < size``; a tiny image (say 20 px with the paper's 40 px
    padding) is padded in several reflection rounds instead, each as large as the current size allows.
    """
    while left or right or top or bottom:
        h, w = x.shape[-2:]
        step = (min(left, w - 1), min(right, w - 1), min(top, h - 1), min(bottom, h - 1))
        if h < 2 and (top or bottom) or w < 2 and (left or right):
            # A 1-px side cannot be reflected; replicating is the only sensible extension.
            return F.pad(x, (left, right, top, bottom), mode="replicate")
        x = F.pad(x, step, mode="reflect")
        left, right, top, bottom = (left - step[0], right - step[1], top - step[2], bottom - step[3])
    return x


class StyleTransferNet(nn.Module):
    """Feed-forward style transfer network; maps RGB in [0, 1] to RGB in [0, 1] of the same size.

    Args:
        variant: ``"paper"`` (the supplementary's architecture) or ``"modern"`` (instance norm,
            nearest-neighbour upsampling, reflection padding in every conv).
        channels: width of the first layer (32 in the paper); the next layers use 2x and 4x.
        num_residual: number of residual blocks (5 in the paper).
        norm: ``"batch"``, ``"instance"`` or ``"none"``; default from ``variant``.
        upsample: ``"transposed"``, ``"nearest"`` or ``"bilinear"`` (see
            :class:`~perceptual_utils.blocks.UpsampleLayer`); default from ``variant``.
        padding: padding of the non-residual convs, ``"zeros"`` or ``"reflect"``; default from ``variant``.
        residual_padding: ``"none"`` (unpadded residual convs, centre-cropped shortcut, and an input
            reflection padding of ``8 * num_residual`` px = 40 px for 5 blocks) or ``"reflect"``/``"zeros"``.
        num_styles: styles learned by one network (Dumoulin et al. 2017). ``1`` (default) is the
            single-style network. ``N > 1`` replaces every instance norm by a
            :class:`~perceptual_utils.blocks.ConditionalInstanceNorm2d` with one scale and shift per
            style (everything else is shared); it needs ``norm="instance"`` (e.g. ``variant="modern"``).
            The forward pass then takes ``style`` (see :meth:`forward`).
        global_residual: output ``x + body(x)`` (clamped to [0, 1] in eval mode) instead of
            ``scaled_tanh(body(x))``, with the last conv zero-initialised, so the untrained network
            is the identity and training starts where Gatys' optimisation from the photo starts.
            Not in the paper (VDSR's global residual, as our ``modern`` SR network uses): the
            quarter-resolution bottleneck must otherwise re-draw the photo's fine detail, which
            the relu2_2 content loss asks for. Off by default: in our 160-step A/B
            (``benchmarks/style_ab.py --compare global-residual``) the unbounded output overshot on
            the first Adam steps and the network fell back to the identity (objective 33.3 vs 16.2).

    ``.config`` holds the resolved constructor arguments, so ``StyleTransferNet(**net.config)``
    rebuilds the same architecture (model files store it). ``"num_styles"`` is only in it when
    ``N > 1``, so a single-style network's config (and its model files) are as before.
    """

    def __init__(self, variant: str = "paper", channels: int = 32, num_residual: int = 5,
                 norm: str | None = None, upsample: str | None = None, padding: str | None = None,
                 residual_padding: str | None = None, num_styles: int = 1, global_residual: bool = False):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
        if int(channels) < 1 or int(num_residual) < 0:
            raise ValueError(f"channels must be >= 1 and num_residual >= 0, got {channels}, {num_residual}")
        d = VARIANT_DEFAULTS[variant]
        self.config: dict[str, Any] = {
            "variant": variant, "channels": int(channels), "num_residual": int(num_residual),
            "norm": norm or d["norm"], "upsample": upsample or d["upsample"],
            "padding": padding or d["padding"], "residual_padding": residual_padding or d["residual_padding"],
        }
        if isinstance(num_styles, bool) or int(num_styles) != num_styles or int(num_styles) < 1:
            raise ValueError(f"num_styles must be an integer >= 1, got {num_styles!r}")
        self.num_styles = k = int(num_styles)
        if k > 1:
            if self.config["norm"] != "instance":
                raise ValueError(f"num_styles={k} needs conditional instance norm (norm='instance', e.g. "
                                 f"variant='modern'), got norm={self.config['norm']!r}")
            self.config["num_styles"] = k
        self.global_residual = bool(global_residual)
        if self.global_residual:  # only then, so older model files' configs stay as they were
            self.config["global_residual"] = True
        c, n = self.config["channels"], self.config["num_residual"]
        norm, pad = self.config["norm"], self.config["padding"]
        # Each unpadded residual block crops 2 px per side at 1/4 resolution = 8 px at full resolution.
        self.input_padding = 8 * n if self.config["residual_padding"] == "none" else 0
        self.down = nn.Sequential(
            ConvLayer(3, c, 9, 1, norm=norm, padding=pad, num_styles=k),
            ConvLayer(c, 2 * c, 3, 2, norm=norm, padding=pad, num_styles=k),
            ConvLayer(2 * c, 4 * c, 3, 2, norm=norm, padding=pad, num_styles=k),
        )
        self.residual = nn.Sequential(
            *[ResidualBlock(4 * c, norm=norm, padding=self.config["residual_padding"], num_styles=k)
              for _ in range(n)])
        self.up = nn.Sequential(
            UpsampleLayer(4 * c, 2 * c, norm=norm, mode=self.config["upsample"], padding=pad, num_styles=k),
            UpsampleLayer(2 * c, c, norm=norm, mode=self.config["upsample"], padding=pad, num_styles=k),
        )
        last = ConvLayer(c, 3, 9, 1, norm="none", relu=False, padding=pad)
        if self.global_residual:  # the identity at initialisation: x + 0
            conv = next(m for m in last.modules() if isinstance(m, nn.Conv2d))
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        self.output = nn.Sequential(last) if self.global_residual else nn.Sequential(last, ScaledTanh())

    def forward(self, x: torch.Tensor, style: int | torch.Tensor | None = None) -> torch.Tensor:
        """``(B, 3, H, W)`` in [0, 1] -> ``(B, 3, H, W)`` in [0, 1], for any ``H, W >= 1``.

        ``style`` (multi-style networks; see :meth:`style_selection`): an int style index, a
        LongTensor of per-image indices ``(B,)``, or mixing weights over the styles, a vector
        ``(N,)`` or a per-image matrix ``(B, N)`` (non-negative, normalised to sum to 1: the convex
        mix of the styles' scales and shifts). ``None``: style 0. A single-style network accepts
        ``0`` or ``[w]`` too, and ignores it after checking it.
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"StyleTransferNet expects RGB images shaped (B, 3, H, W), got {tuple(x.shape)}")
        selection = self.style_selection(style, x.shape[0])
        norms = [m for m in self.modules() if isinstance(m, ConditionalInstanceNorm2d)]
        for m in norms:
            m.set_style(selection)
        try:
            h, w = x.shape[-2:]
            p = self.input_padding
            # Extra bottom/right padding up to a multiple of 4 (see the module docstring).
            x = reflect_pad(x, p, p + self._extra(w), p, p + self._extra(h))
            y = self.output(self.up(self.residual(self.down(x))))
        finally:
            for m in norms:
                m.set_style(None)
        y = y[..., :h, :w]
        if not self.global_residual:
            return y
        y = y + x[..., p:p + h, p:p + w]
        # Unclamped while training, so the loss keeps its gradient where a pixel overshoots.
        return y if self.training else y.clamp(0, 1)

    def style_selection(self, style: int | torch.Tensor | Any | None, batch: int | None = None
                        ) -> torch.Tensor | None:
        """Validate ``style`` (see :meth:`forward`) and return what the conditional norms use: a
        LongTensor of indices ``(B or 1,)``, a float matrix of weights ``(B or 1, N)`` with rows
        summing to 1, or ``None`` (style 0).

        Raises:
            ValueError: an index out of range, weights of the wrong length, negative, not finite
                or summing to 0, or a per-image selection whose length is not the batch size.
        """
        n = self.num_styles
        if style is None:
            return None
        if isinstance(style, bool):
            raise ValueError(f"style must be an index or mixing weights, got {style!r}")
        if isinstance(style, int) or (isinstance(style, torch.Tensor) and style.dim() == 0
                                      and not style.is_floating_point()):
            idx = int(style)
            if not 0 <= idx < n:
                raise ValueError(f"style index {idx} is out of range for a network with {n} style(s)")
            return torch.tensor([idx])
        t = style if isinstance(style, torch.Tensor) else torch.as_tensor(style)
        if not t.is_floating_point():
            if t.dim() != 1 or t.dtype == torch.bool:
                raise ValueError(f"per-image style indices must be a 1-D LongTensor, got shape {tuple(t.shape)}")
            if batch is not None and t.shape[0] not in (1, batch):
                raise ValueError(f"{t.shape[0]} style indices for a batch of {batch} images")
            if t.numel() and (int(t.min()) < 0 or int(t.max()) >= n):
                raise ValueError(f"style indices must be in 0..{n - 1}, got {t.tolist()}")
            return t.long()
        w = t.detach().float()
        if w.dim() == 1:
            w = w[None]
        if w.dim() != 2 or w.shape[1] != n:
            raise ValueError(f"style mixing weights need {n} entries (one per style), got shape {tuple(t.shape)}")
        if batch is not None and w.shape[0] not in (1, batch):
            raise ValueError(f"{w.shape[0]} rows of style mixing weights for a batch of {batch} images")
        if not bool(torch.isfinite(w).all()):
            raise ValueError("style mixing weights must be finite numbers")
        if bool((w < 0).any()):
            raise ValueError(f"style mixing weights must be non-negative, got {w.tolist()}")
        sums = w.sum(1, keepdim=True)
        if bool((sums <= 0).any()):
            raise ValueError("style mixing weights must not all be zero (their sum must be > 0)")
        return w / sums

    def _extra(self, size: int) -> int:
        """Bottom/right padding for a side of ``size`` px: up to a multiple of 4, and to at least
        8 px in all, so the quarter-resolution map is 2 px wide and its 1-px reflection padding is valid."""
        extra = (-size) % 4
        while size + extra + 2 * self.input_padding < 8:
            extra += 4
        return extra

    def layer_spec(self) -> list[tuple[str, int, float]]:
        """The conv layers in order as ``(name, kernel, stride)``; stride 0.5 marks the stride-1/2
        (upsampling) layers. Used for receptive-field and compute arithmetic."""
        spec: list[tuple[str, int, float]] = []
        c = self.config["channels"]
        spec += [(f"c9s1-{c}", 9, 1), (f"d{2 * c}", 3, 2), (f"d{4 * c}", 3, 2)]
        for i in range(self.config["num_residual"]):
            spec += [(f"R{4 * c}.{i + 1}a", 3, 1), (f"R{4 * c}.{i + 1}b", 3, 1)]
        for name in (f"u{2 * c}", f"u{c}"):
            if self.config["upsample"] == "bilinear":  # interpolation reads one more coarse pixel each side
                spec.append((f"{name}-bilinear", 3, 1))
            spec.append((name, 3, 0.5))
        spec.append(("c9s1-3", 9, 1))
        return spec


def receptive_field_growth(spec: list[tuple[str, int, float]]) -> list[tuple[str, int]]:
    """Receptive field (in input pixels) of one unit after each layer of ``spec``.

    Standard recurrence: a conv with kernel ``k`` and stride ``s >= 1`` adds ``(k - 1) * jump`` and
    then multiplies ``jump`` (the input-pixel distance between neighbouring units) by ``s``. An
    upsampling layer (stride 1/2: transposed conv = zero-insertion + conv, or nearest + conv) first
    halves ``jump`` and then adds ``(k - 1) * jump`` on the finer grid.
    """
    rf, jump, out = 1.0, 1.0, []
    for name, k, stride in spec:
        if stride < 1:
            jump *= stride
            rf += (k - 1) * jump
        else:
            rf += (k - 1) * jump
            jump *= stride
        out.append((name, int(round(rf))))
    return out


def conv_macs(net: nn.Module, size: int | tuple[int, int]) -> list[tuple[str, tuple[int, ...], int]]:
    """Multiply-adds of every conv / transposed conv for one ``size`` input, via forward hooks.

    Returns ``(module name, output shape, MACs)``; a 3x3 conv with ``C`` in and out channels on an
    ``H x W`` map costs ``9 H W C^2`` (the paper's compute argument).
    """
    h, w = (size, size) if isinstance(size, int) else size
    rows: list[tuple[str, tuple[int, ...], int]] = []
    hooks = []
    for name, m in net.named_modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            def hook(mod, inp, out, name=name):
                k = mod.kernel_size[0] * mod.kernel_size[1]
                if isinstance(mod, nn.Conv2d):  # every output unit sums k * C_in products
                    macs = out[0].numel() * k * mod.in_channels // mod.groups
                else:  # every input unit scatters into k * C_out outputs
                    macs = inp[0][0].numel() * k * mod.out_channels // mod.groups
                rows.append((name, tuple(out.shape[1:]), int(macs)))
            hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, 3, h, w, device=next(net.parameters()).device))
    finally:
        for hk in hooks:
            hk.remove()
    return rows


def activation_shapes(net: nn.Module, size: int | tuple[int, int]) -> list[tuple[str, str, tuple[int, ...], int]]:
    """``(name, layer type, output shape, parameters)`` for each top-level stage of a
    :class:`StyleTransferNet` on a ``size`` input (batch dim dropped), input padding included."""
    h, w = (size, size) if isinstance(size, int) else size
    x = torch.zeros(1, 3, h, w, device=next(net.parameters()).device)
    rows = [("input", "-", tuple(x.shape[1:]), 0)]
    net = net.eval()
    with torch.no_grad():
        p = net.input_padding
        x = reflect_pad(x, p, p + net._extra(w), p, p + net._extra(h))
        if tuple(x.shape[-2:]) != (h, w):
            rows.append(("pad", "ReflectionPad", tuple(x.shape[1:]), 0))
        for stage in ("down", "residual", "up", "output"):
            for i, m in enumerate(getattr(net, stage)):
                x = m(x)
                rows.append((f"{stage}.{i}", type(m).__name__, tuple(x.shape[1:]),
                             sum(q.numel() for q in m.parameters())))
        x = x[..., :h, :w]
        rows.append(("crop", "-", tuple(x.shape[1:]), 0))
    return rows


def checkerboard_energy(images: torch.Tensor) -> float:
    """Share of an image's (mean-removed) spectral power at the frequencies of 2- and 4-pixel
    periodic patterns, the signature of the stride-1/2 layers' uneven kernel overlap.

    Natural images put very little power exactly there (about the share of any other handful of
    frequencies); checkerboard artefacts put a lot. ``images``: ``(3, H, W)`` or ``(B, 3, H, W)``.
    """
    x = images if images.dim() == 4 else images.unsqueeze(0)
    grey = x.float().mean(1)
    grey = grey - grey.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(grey).abs().pow(2)
    h, w = grey.shape[-2:]
    fy = [i for i in {0, h // 4, h // 2, h - h // 4} if h % 4 == 0 or i in (0, h // 2) and h % 2 == 0]
    fx = [j for j in {0, w // 4, w // 2, w - w // 4} if w % 4 == 0 or j in (0, w // 2) and w % 2 == 0]
    periodic = sum(power[..., i, j] for i in fy for j in fx if (i, j) != (0, 0))
    return float((periodic / power.sum(dim=(-2, -1)).clamp_min(1e-12)).mean())


def checkerboard_ratio(image: torch.Tensor, photo: torch.Tensor) -> float:
    """:func:`checkerboard_energy` of a stylised ``image`` relative to its ``photo``'s own (1.0: the
    network added none), the figure the model cards and the benchmarks report."""
    return checkerboard_energy(image) / max(checkerboard_energy(photo), 1e-12)


# ----------------------------------------------------------------------------- batch-norm folding

def _fold(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.BatchNorm2d) -> None:
    """Fold an eval-mode BN into the preceding conv in place: ``w' = w * s``, ``b' = (b - mu) * s + beta``
    with ``s = gamma / sqrt(var + eps)`` per output channel."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    # Output channels are dim 0 of a Conv2d weight but dim 1 of a ConvTranspose2d weight (in, out/groups, kh, kw).
    shape = (1, -1, 1, 1) if isinstance(conv, nn.ConvTranspose2d) else (-1, 1, 1, 1)
    conv.weight = nn.Parameter(conv.weight.detach() * scale.reshape(shape))
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias.detach())


@torch.no_grad()
def fold_batch_norm(net: nn.Module) -> nn.Module:
    """An inference copy of ``net`` with every BatchNorm2d folded into the conv before it.

    Works for ``Conv2d`` and ``ConvTranspose2d`` followed directly by ``BatchNorm2d`` inside an
    ``nn.Sequential`` (as in :mod:`perceptual_utils.blocks`); the BN becomes ``nn.Identity``. The
    result computes the same function as ``net.eval()`` with one fewer pass over every activation.
    ``net`` itself is not modified. The copy is for inference only: its ``.folded`` is True and
    its state dict no longer matches the config, so do not save it as a model file.
    """
    if not any(isinstance(m, nn.BatchNorm2d) for m in net.modules()):
        out = copy.deepcopy(net).eval()
        out.folded = True
        return out
    out = copy.deepcopy(net).eval()
    for seq in out.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        children = list(seq._modules.items())
        for (_, prev), (name, cur) in zip(children, children[1:]):
            if isinstance(cur, nn.BatchNorm2d) and isinstance(prev, (nn.Conv2d, nn.ConvTranspose2d)):
                if not cur.track_running_stats or cur.running_mean is None:
                    raise ValueError("cannot fold a BatchNorm2d without running statistics")
                _fold(prev, cur)
                seq._modules[name] = nn.Identity()
    left = [n for n, m in out.named_modules() if isinstance(m, nn.BatchNorm2d)]
    if left:
        raise ValueError(f"could not fold batch norm layers not preceded by a conv: {left}")
    out.folded = True
    return out
