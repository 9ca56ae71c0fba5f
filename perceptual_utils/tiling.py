"""Process a large image in overlapping tiles and blend them seamlessly, so memory stays bounded."""
from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from .style.net import receptive_field_growth


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile start positions covering ``[0, length)``; the last tile is flush with the end."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def _ramp(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> torch.Tensor:
    """1-D blending weights: 1 inside, a linear ramp over ``overlap`` px at edges shared with a
    neighbouring tile (never exactly 0, so every pixel has positive total weight)."""
    w = torch.ones(length)
    ramp = torch.linspace(0, 1, overlap + 2)[1:-1] if overlap > 0 else torch.ones(0)
    if ramp_start and overlap:
        w[:overlap] = ramp
    if ramp_end and overlap:
        w[-overlap:] = torch.minimum(w[-overlap:], ramp.flip(0))
    return w


def tiled_apply(fn: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, tile: int = 512,
                overlap: int = 64, scale: int = 1) -> torch.Tensor:
    """Apply a fully convolutional ``fn`` to ``image`` (``(B, C, H, W)``) tile by tile.

    ``fn`` must map an ``h x w`` tile to ``scale*h x scale*w``. Tiles of ``tile`` px overlap by
    ``overlap`` px and are blended with linear ramps, which hides the seams that border effects
    (padding, normalisation statistics) would otherwise leave. An image no larger than one tile
    is processed whole.
    """
    if image.dim() != 4:
        raise ValueError(f"tiled_apply expects (B, C, H, W), got {tuple(image.shape)}")
    if tile <= 2 * overlap:
        raise ValueError(f"tile ({tile}) must be more than twice the overlap ({overlap})")
    b, _, h, w = image.shape
    if h <= tile and w <= tile:
        return fn(image)
    ys, xs = _starts(h, tile, overlap), _starts(w, tile, overlap)
    out = weight = None
    for y in ys:
        for x in xs:
            th, tw = min(tile, h), min(tile, w)
            result = fn(image[..., y:y + th, x:x + tw])
            if out is None:
                out = torch.zeros(b, result.shape[1], h * scale, w * scale, dtype=torch.float32, device=result.device)
                weight = torch.zeros(1, 1, h * scale, w * scale, dtype=torch.float32, device=result.device)
            wy = _ramp(th * scale, overlap * scale, y > 0, y + th < h).to(result.device)
            wx = _ramp(tw * scale, overlap * scale, x > 0, x + tw < w).to(result.device)
            mask = (wy[:, None] * wx[None, :])[None, None]
            sy, sx = y * scale, x * scale
            out[..., sy:sy + th * scale, sx:sx + tw * scale] += result.float() * mask
            weight[..., sy:sy + th * scale, sx:sx + tw * scale] += mask
    return (out / weight).to(image.dtype if image.is_floating_point() else torch.float32)


# ----------------------------------------------------------------------------- whole-image norm statistics
#
# Instance norm normalises every activation map with its own spatial mean and variance, so a tile
# normalised on its own gets its own contrast (a visible patchwork). :func:`tiled_apply_exact`
# computes each norm layer's statistics over the *whole image's* activation at that layer, tile
# by tile, and then runs the tiles with those statistics frozen. It works layer by layer: for the
# k-th instance norm, every tile is run (with norms 1..k-1 already frozen to their whole-image
# statistics) up to that norm's input, and the sum and sum of squares of the part of the
# activation that the tile *owns* (a partition of the whole map) are accumulated in float64. Each
# tile carries a halo at least as wide as the network's receptive field, so the owned part equals
# the whole-image activation exactly. The final pass crops each tile's output to its core, so the
# result equals the whole-image forward pass up to float rounding, for any norm. Memory is
# bounded by one tile (plus the input and output images); compute is about
# ``1 + (number of instance norms) / 2`` forward passes.

class _StopForward(Exception):
    """Raised inside a forward pass once the activation of interest has been collected."""


class FrozenInstanceNorm(nn.Module):
    """Stand-in for an :class:`~torch.nn.InstanceNorm2d` that normalises with given per-sample,
    per-channel statistics (``mean``, ``var``: ``(B, C)``) instead of each input's own; while
    ``collect`` is set it passes its input to ``collect`` and stops the forward pass.

    A :class:`~perceptual_utils.blocks.ConditionalInstanceNorm2d` (multi-style networks) is kept
    as ``conditional``: its per-style scale and shift (set by the network's forward for the
    chosen style or mix) are applied after the frozen normalisation."""

    def __init__(self, norm: nn.InstanceNorm2d):
        super().__init__()
        self.eps = norm.eps
        # Duck-typed (no import of blocks here): a conditional norm applies its own affine part.
        self.conditional = norm if hasattr(norm, "modulate") else None
        self.weight = None if self.conditional is not None else norm.weight
        self.bias = None if self.conditional is not None else norm.bias
        self.mean: torch.Tensor | None = None
        self.var: torch.Tensor | None = None
        self.collect: Callable[[torch.Tensor], None] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.collect is not None:
            self.collect(x)
            raise _StopForward
        if self.mean is None or self.var is None:  # shape probing: statistics not needed
            return x
        mean = self.mean.to(x.device, torch.float32)[..., None, None]
        rstd = torch.rsqrt(self.var.to(x.device, torch.float32) + self.eps)[..., None, None]
        y = (x.float() - mean) * rstd
        if self.conditional is not None:
            return self.conditional.modulate(y).to(x.dtype)
        if self.weight is not None:
            y = y * self.weight.float()[None, :, None, None] + self.bias.float()[None, :, None, None]
        return y.to(x.dtype)


def _uses_batch_statistics(m: nn.Module) -> bool:
    return isinstance(m, nn.InstanceNorm2d) and not (m.track_running_stats and m.running_mean is not None)


def has_instance_norm(net: nn.Module) -> bool:
    """Whether ``net`` normalises with per-input statistics (``InstanceNorm2d`` without running stats)."""
    return any(_uses_batch_statistics(m) for m in net.modules())


def freeze_instance_norms(net: nn.Module) -> tuple[nn.Module, list[FrozenInstanceNorm]]:
    """A copy of ``net`` whose instance norms are :class:`FrozenInstanceNorm`
    (sharing the affine parameters), and those in forward order."""
    out = copy.deepcopy(net)
    for parent in list(out.modules()):
        for name, child in list(parent._modules.items()):
            if child is not None and _uses_batch_statistics(child):
                parent._modules[name] = FrozenInstanceNorm(child)
    # Forward order (module registration order is not necessarily call order): record calls.
    order: list[FrozenInstanceNorm] = []
    hooks = [m.register_forward_pre_hook(lambda mod, inp: order.append(mod) if mod not in order else None)
             for m in out.modules() if isinstance(m, FrozenInstanceNorm)]
    try:
        p = next(out.parameters())
        with torch.no_grad():
            out(torch.zeros(1, 3, 64, 64, device=p.device, dtype=p.dtype))
    finally:
        for h in hooks:
            h.remove()
    return out, order


def receptive_field(net: nn.Module) -> int:
    """The receptive field of ``net`` in input px: exact from ``layer_spec()`` when the network
    has one (:class:`StyleTransferNet`), else the sum of ``(kernel - 1) * dilation`` of every conv
    times its resolution (an upper bound for the plain conv stacks of this package)."""
    if hasattr(net, "layer_spec"):
        return receptive_field_growth(net.layer_spec())[-1][1]
    rf = 1
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            rf += (m.kernel_size[0] - 1) * m.dilation[0] * max(1, m.stride[0])
    return rf


def tile_halo(net: nn.Module, overlap: int = 0) -> int:
    """The context px around each tile's core: the receptive field (or ``overlap``, if larger),
    rounded up to a multiple of 4 so strided layers stay aligned (as ``stylize`` tiles)."""
    return -(-max(receptive_field(net), int(overlap)) // 4) * 4


def check_tile(net: nn.Module, tile: int | None, overlap: int = 0, option: str = "--tile") -> None:
    """Refuse a tile side below twice :func:`tile_halo` (``0``/``None``, no tiling, passes).

    Why twice the halo: a tile keeps a core of ``tile - 2 * halo`` px (at least ``tile // 2``), so
    below ``2 * halo`` most of each tile is context that is computed and thrown away; at
    ``2 * halo`` a tile does at most 9 times the work of its core, while ``--tile 16`` on a
    network with a 128 px halo keeps an 8 px core of a 264 px tile (about 1000 times the work:
    minutes for one photo).

    Raises:
        ValueError: the message names ``option``, the minimum and the halo.
    """
    if not tile:
        return
    halo = tile_halo(net, overlap)
    if int(tile) < 2 * halo:
        raise ValueError(f"{option} {tile} is too small for this network: each tile carries {halo} px of context "
                         f"on every side (its receptive field, or --overlap if larger), so tiles below "
                         f"{2 * halo} px spend most of their work on it; use {option} {2 * halo} or more, "
                         f"or 0 for no tiling")


def _grid(length: int, core: int, halo: int) -> list[tuple[int, int, int, int]]:
    """``(core_start, core_end, start, end)`` per tile along one axis: cores partition
    ``[0, length)`` (starts are multiples of ``core``), tiles extend them by ``halo`` (clamped)."""
    out = []
    for cs in range(0, length, core):
        ce = min(length, cs + core)
        out.append((cs, ce, max(0, cs - halo), min(length, ce + halo)))
    return out


def _layer_scales(net: nn.Module, frozen: list[FrozenInstanceNorm], device, dtype) -> list[float]:
    """Resolution of each frozen norm's input relative to the network input (1, 1/2, 1/4, 2, ...),
    from the activation sizes for two probe inputs."""
    sizes: dict[int, list[int]] = {i: [] for i in range(len(frozen))}
    hooks = [m.register_forward_pre_hook(lambda mod, inp, i=i: sizes[i].append(inp[0].shape[-1]))
             for i, m in enumerate(frozen)]
    try:
        with torch.no_grad():
            for n in (64, 128):
                net(torch.zeros(1, 3, 64, n, device=device, dtype=dtype))
    finally:
        for h in hooks:
            h.remove()
    return [(s[1] - s[0]) / 64 for s in (sizes[i] for i in range(len(frozen)))]


def tiled_apply_exact(net: nn.Module, image: torch.Tensor, tile: int = 1024, halo: int | None = None,
                      scale: int = 1, run: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
                      ) -> torch.Tensor:
    """Apply ``net`` to ``image`` (``(B, 3, H, W)``) tile by tile with the same result as one
    whole-image pass, including for networks with instance norm (see the section comment above).

    Args:
        tile: tile side in px including the halo on both sides.
        halo: context px around each tile's core (default: the receptive field rounded up to a
            multiple of 4); cores are multiples of 4 px so strided layers stay aligned.
        scale: output px per input px.
        run: ``run(module, tile) -> output`` (e.g. moves the tile to the device; default: call).
    """
    if image.dim() != 4:
        raise ValueError(f"tiled_apply_exact expects (B, C, H, W), got {tuple(image.shape)}")
    run = run or (lambda m, t: m(t))
    if halo is None:
        halo = receptive_field(net)
    halo = -(-int(halo) // 4) * 4
    core = (int(tile) - 2 * halo) // 4 * 4
    if core < 4:
        raise ValueError(f"tile ({tile}) must exceed twice the halo ({halo} px, the network's receptive "
                         f"field) by at least 4 px; use a larger tile")
    b, _, h, w = image.shape
    if h <= tile and w <= tile:
        return run(net, image)
    param = next(net.parameters())
    frozen_net, norms = freeze_instance_norms(net)
    tiles = [(ys, xs) for ys in _grid(h, core, halo) for xs in _grid(w, core, halo)]
    if norms:
        scales = _layer_scales(frozen_net, norms, param.device, param.dtype)
        for norm, a in zip(norms, scales):
            total = count = squares = None

            def owned(lo_core, hi_core, lo, length, size):
                first = 0 if lo_core == 0 else round(a * (lo_core - lo))
                last = size if hi_core == length else round(a * (hi_core - lo))
                return first, last

            for (ycs, yce, y0, y1), (xcs, xce, x0, x1) in tiles:
                box = {}

                def collect(x, box=box):
                    box["x"] = x

                norm.collect = collect
                try:
                    run(frozen_net, image[..., y0:y1, x0:x1])
                except _StopForward:
                    pass
                finally:
                    norm.collect = None
                act = box["x"]
                fy, ly = owned(ycs, yce, y0, h, act.shape[-2])
                fx, lx = owned(xcs, xce, x0, w, act.shape[-1])
                part = act[..., fy:ly, fx:lx].double()
                s, sq = part.sum(dim=(-2, -1)), part.pow(2).sum(dim=(-2, -1))
                total = s if total is None else total + s
                squares = sq if squares is None else squares + sq
                count = part.shape[-2] * part.shape[-1] + (count or 0)
            mean = total / count
            norm.mean, norm.var = mean, (squares / count - mean.pow(2)).clamp_min(0)
    out = None
    for (ycs, yce, y0, y1), (xcs, xce, x0, x1) in tiles:
        result = run(frozen_net, image[..., y0:y1, x0:x1])
        if out is None:
            out = torch.empty(b, result.shape[1], h * scale, w * scale, dtype=torch.float32)
        out[..., ycs * scale:yce * scale, xcs * scale:xce * scale] = result[
            ..., (ycs - y0) * scale:(yce - y0) * scale, (xcs - x0) * scale:(xce - x0) * scale].float().cpu()
    return out
