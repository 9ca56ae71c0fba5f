"""Tiled processing: overlapping tiles blend back into the whole-image result."""
from __future__ import annotations

import torch
from torch import nn

from perceptual_utils.tiling import tiled_apply


def test_tiled_apply_matches_whole_image():
    conv = nn.Conv2d(3, 3, 5, padding=2)
    image = torch.rand(1, 3, 70, 90)
    with torch.no_grad():
        whole, tiled = conv(image), tiled_apply(conv, image, tile=32, overlap=8)
    # Inside the first tile, away from its seams, only that tile contributes: exact agreement.
    assert torch.allclose(whole[..., :20, :20], tiled[..., :20, :20], atol=1e-6)
    # Near seams the blend of tiles differs only a little from the whole-image result.
    assert (whole - tiled).abs().mean() < 0.01
    pointwise = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        assert torch.allclose(pointwise(image), tiled_apply(pointwise, image, tile=32, overlap=8), atol=1e-6)
    up = tiled_apply(lambda t: nn.functional.interpolate(t, scale_factor=2), image, tile=32, overlap=8, scale=2)
    assert torch.allclose(up, nn.functional.interpolate(image, scale_factor=2), atol=1e-6)
