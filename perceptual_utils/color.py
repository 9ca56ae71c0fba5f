"""Colour-space conversions (ITU-R BT.601 YCbCr) and luminance-only colour preservation."""
from __future__ import annotations

import torch

# Full-range BT.601 (JPEG convention) for colour preservation: exactly invertible.
_RGB_TO_YCBCR = torch.tensor([
    [0.299, 0.587, 0.114],
    [-0.168736, -0.331264, 0.5],
    [0.5, -0.418688, -0.081312],
])
_YCBCR_OFFSET = torch.tensor([0.0, 0.5, 0.5])


def rgb_to_ycbcr(images: torch.Tensor) -> torch.Tensor:
    """Full-range BT.601 YCbCr of RGB in [0, 1] (channel dim -3); Y in [0, 1], Cb/Cr centred at 0.5."""
    m = _RGB_TO_YCBCR.to(images)
    out = torch.einsum("ij,...jhw->...ihw", m, images)
    return out + _YCBCR_OFFSET.to(images).view(3, 1, 1)


def ycbcr_to_rgb(images: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr`."""
    m = torch.linalg.inv(_RGB_TO_YCBCR.double()).to(images)
    return torch.einsum("ij,...jhw->...ihw", m, images - _YCBCR_OFFSET.to(images).view(3, 1, 1))


def rgb_to_y_bt601(images: torch.Tensor) -> torch.Tensor:
    """Studio-swing luma of the super-resolution benchmark protocol (MATLAB ``rgb2ycbcr``).

    Input RGB in [0, 1]; output Y in [16, 235] on the 0-255 scale, channel dim kept (``(..., 1, H, W)``).
    """
    r, g, b = images.unbind(-3)
    y = 16.0 + 65.481 * r + 128.553 * g + 24.966 * b
    return y.unsqueeze(-3)


def preserve_color(stylized: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Luminance-only transfer: keep ``stylized``'s Y channel and ``original``'s Cb/Cr.

    Both RGB in [0, 1] with the same spatial size; result clamped to [0, 1].
    """
    if stylized.shape[-2:] != original.shape[-2:]:
        raise ValueError(f"preserve_color: sizes differ, {tuple(stylized.shape)} vs {tuple(original.shape)}")
    y = rgb_to_ycbcr(stylized)[..., :1, :, :]
    cbcr = rgb_to_ycbcr(original.to(stylized))[..., 1:, :, :]
    return ycbcr_to_rgb(torch.cat([y, cbcr], dim=-3)).clamp(0, 1)
