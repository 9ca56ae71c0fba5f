"""Process a large image in overlapping tiles and blend them seamlessly, so memory stays bounded."""
from __future__ import annotations

from collections.abc import Callable

import torch


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
