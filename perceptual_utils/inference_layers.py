"""Exact inference rewrites of the networks' layers (used by :mod:`perceptual_utils.inference`).

**Sub-pixel upsampling.** A nearest-neighbour x2 upsampling followed by a padded 3x3 conv (the
``modern`` networks' :class:`~perceptual_utils.blocks.UpsampleLayer`, after Odena et al. 2016)
computes, at each of the four output phases ``(a, b)`` (row and column parity), a 2x2 conv of the
*low-resolution* map whose taps are sums of the 3x3 taps that land on the same low-resolution
pixel (the sub-pixel view of Shi et al. 2016). Output row ``2i + a`` reads upsampled rows
``2i + a + k`` (``k = 0, 1, 2``), which are low-resolution rows ``i + (a + k + 1) // 2`` of the
input padded by one pixel: phase ``a = 0`` uses rows ``(i, i + 1)`` with kernel rows
``(w0, w1 + w2)``, phase ``a = 1`` rows ``(i + 1, i + 2)`` with ``(w0 + w1, w2)``; the same holds
for columns. The padding carries over exactly: reflection padding of the upsampled map by 1 px
equals *replicate* padding of the low-resolution map (the reflected row is a copy of the edge
row), and zero padding stays zero padding. Result: 16 instead of 36 multiply-adds per
low-resolution pixel and channel pair (2.25x fewer) and no upsampled intermediate, with the same
sums in another order (differences ~1e-6).

**Narrow convs in channels-last.** oneDNN's float32 kernels for a conv with 3 output channels
(the 9x9 output layer) ran several times slower per operation than for wide convs in the default
layout, and about twice as fast in channels-last (AMD EPYC, AVX2, one thread); the rest of the network stays contiguous (in
channels-last, instance norm and reflection padding cost more than the convs gain; measured in
``benchmarks/inference.py``).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

#: Convs with fewer output channels than this (and a kernel of at least 3) run in channels-last.
NARROW_CHANNELS = 8


def _phase_taps(w: torch.Tensor, dim: int) -> list[torch.Tensor]:
    """Along ``dim`` (a kernel axis of length 3): the 2-tap kernels of phase 0 ``(w0, w1 + w2)``
    and phase 1 ``(w0 + w1, w2)``."""
    w0, w1, w2 = w.unbind(dim)
    return [torch.stack([w0, w1 + w2], dim), torch.stack([w0 + w1, w2], dim)]


class SubpixelUpsampleConv(nn.Module):
    """Nearest x2 + (reflection or zero) padding by 1 + 3x3 conv, computed as four 2x2 convs on
    the low-resolution map (see the module docstring). Built from the original ``conv``."""

    def __init__(self, conv: nn.Conv2d, padding: str):
        super().__init__()
        if padding not in ("reflect", "zeros"):
            raise ValueError(f"padding must be 'reflect' or 'zeros', got {padding!r}")
        w = conv.weight.detach()
        rows = _phase_taps(w, 2)
        kernels = [k for r in rows for k in _phase_taps(r, 3)]  # phases (0,0), (0,1), (1,0), (1,1)
        self.out_channels = w.shape[0]
        self.weight = nn.Parameter(torch.cat(kernels, 0), requires_grad=False)
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype,
                                                                            device=w.device)
        self.bias = nn.Parameter(bias.repeat(4), requires_grad=False)
        self.pad_mode = "replicate" if padding == "reflect" else "constant"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        o = self.out_channels
        y = F.conv2d(F.pad(x, (1, 1, 1, 1), mode=self.pad_mode), self.weight, self.bias)  # (B, 4o, h+1, w+1)
        out = torch.empty(b, o, h, 2, w, 2, dtype=y.dtype, device=y.device)
        for p, (a, c) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            out[:, :, :, a, :, c] = y[:, p * o:(p + 1) * o, a:a + h, c:c + w]
        return out.view(b, o, 2 * h, 2 * w)


class ChannelsLastConv(nn.Module):
    """A conv run in channels-last layout (input converted, output back to contiguous)."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.contiguous(memory_format=torch.channels_last)).contiguous()


def _is_nearest_x2(m: nn.Module) -> bool:
    if not (isinstance(m, nn.Upsample) and m.mode == "nearest" and m.size is None):
        return False
    factors = m.scale_factor if isinstance(m.scale_factor, tuple) else (m.scale_factor, m.scale_factor)
    return all(f is not None and float(f) == 2.0 for f in factors)


def _plain_3x3(m: nn.Module, padding: int) -> bool:
    return (isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and m.stride == (1, 1)
            and m.dilation == (1, 1) and m.groups == 1 and m.padding == (padding, padding)
            and (padding == 0 or m.padding_mode == "zeros"))


def _rewrite_upsampling(seq: nn.Sequential) -> int:
    """Replace ``Upsample(x2, nearest), [ReflectionPad2d(1)], Conv2d(3x3)`` runs inside ``seq``;
    returns how many were replaced."""
    names = list(seq._modules)
    done = 0
    for i, name in enumerate(names):
        mods = [seq._modules[n] for n in names[i:i + 3]]
        if not mods or not _is_nearest_x2(mods[0]):
            continue
        if (len(mods) == 3 and isinstance(mods[1], nn.ReflectionPad2d) and mods[1].padding == (1, 1, 1, 1)
                and _plain_3x3(mods[2], 0)):
            seq._modules[name] = SubpixelUpsampleConv(mods[2], "reflect")
            seq._modules[names[i + 1]], seq._modules[names[i + 2]] = nn.Identity(), nn.Identity()
            done += 1
        elif len(mods) >= 2 and _plain_3x3(mods[1], 1):
            seq._modules[name] = SubpixelUpsampleConv(mods[1], "zeros")
            seq._modules[names[i + 1]] = nn.Identity()
            done += 1
    return done


@torch.no_grad()
def rewrite_for_cpu(net: nn.Module) -> nn.Module:
    """A copy of ``net`` (in eval mode) with the rewrites of the module docstring applied wherever
    the layer pattern occurs (inside ``nn.Sequential`` containers, as :mod:`perceptual_utils.blocks`
    builds them). Networks without those patterns come back unchanged (as a copy)."""
    out = copy.deepcopy(net).eval()
    for seq in [m for m in out.modules() if isinstance(m, nn.Sequential)]:
        _rewrite_upsampling(seq)
    for parent in list(out.modules()):
        if isinstance(parent, ChannelsLastConv):
            continue
        for name, child in list(parent._modules.items()):
            if (isinstance(child, nn.Conv2d) and child.out_channels < NARROW_CHANNELS
                    and max(child.kernel_size) >= 3):
                parent._modules[name] = ChannelsLastConv(child)
    return out
