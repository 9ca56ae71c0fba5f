"""Making low-resolution images: the training degradation and the benchmark protocol.

Bicubic resampling
------------------
Everything here resamples with ``torch.nn.functional.interpolate(mode="bicubic",
antialias=True)``. That is *not* PyTorch's plain bicubic (Keys kernel with ``a = -0.75`` and a
fixed 4-tap support); with ``antialias=True`` PyTorch uses Pillow's resampler: the Keys kernel
with ``a = -0.5`` whose support is stretched by the reduction factor when shrinking. That is the
kernel MATLAB's ``imresize(..., 'bicubic')`` uses (antialiasing on by default), which is what the
super-resolution literature's LR images and bicubic baselines were made with. The tests check it
against ``PIL.Image.resize(..., Image.BICUBIC)`` in float mode (equal to 1e-5) and in 8-bit
mode (within one grey level).
The one remaining difference to MATLAB is at the image border (MATLAB mirrors the image, Pillow
and PyTorch renormalise the truncated kernel); the benchmark shaves ``scale`` pixels off every
border before measuring, and with it the bicubic baseline reproduces the published numbers
(Set5 x4: 28.43 dB / 0.811).

Training degradation (the paper, Section 4.2)
---------------------------------------------
"we blur with a Gaussian kernel of width sigma = 1.0 and downsample with bicubic interpolation":
:func:`degrade`. The blur removes frequencies above the LR Nyquist limit more strongly than the
bicubic antialiasing alone, so the network learns to restore detail rather than to undo aliasing.

Evaluation protocol
-------------------
:func:`evaluation_pair`: crop the HR image so both sides are multiples of the scale (keeping the
top-left corner, MATLAB's ``modcrop``), LR by bicubic downsampling *without* extra blur, then
rounded to 8 bits as MATLAB's ``imresize`` does for ``uint8`` images.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

# The blur lives with the other image operations; the training degradation starts with it, and it
# stays importable from here (notebooks and exercises use ``degradation.gaussian_blur``).
from ..images import as_batch, gaussian_blur, gaussian_kernel1d  # noqa: F401


def _check_scale(scale: int) -> int:
    if int(scale) != scale or int(scale) < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    return int(scale)


def quantize(image: torch.Tensor) -> torch.Tensor:
    """Round to the 256 levels of an 8-bit image (values stay in [0, 1])."""
    return torch.round(image.clamp(0, 1) * 255.0) / 255.0


def bicubic_resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """MATLAB/Pillow-style bicubic resize (``a = -0.5``, antialiased when shrinking) to ``(H, W)``."""
    x, single = as_batch(image)
    out = F.interpolate(x.float(), size=tuple(int(s) for s in size), mode="bicubic", align_corners=False,
                        antialias=True)
    return out[0] if single else out


def bicubic_downsample(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Shrink by ``scale`` with antialiased bicubic; sides must be multiples of ``scale``."""
    scale = _check_scale(scale)
    h, w = image.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"image of {h}x{w} px: both sides must be multiples of the scale {scale} "
                         "(crop first, see crop_to_multiple)")
    return bicubic_resize(image, (h // scale, w // scale))


def bicubic_upsample(image: torch.Tensor, scale: int, clamp: bool = True) -> torch.Tensor:
    """Enlarge by ``scale`` with bicubic interpolation (the baseline of the SR benchmarks).

    Bicubic overshoots near edges, so the result is clamped to [0, 1] unless ``clamp=False``.
    """
    scale = _check_scale(scale)
    h, w = image.shape[-2:]
    out = bicubic_resize(image, (h * scale, w * scale))
    return out.clamp(0, 1) if clamp else out


def degrade(hr: torch.Tensor, scale: int, sigma: float = 1.0, quantize_output: bool = True) -> torch.Tensor:
    """The paper's training degradation: Gaussian blur (``sigma``, 0 = none), then bicubic
    downsampling by ``scale``.

    ``hr``: ``(3, H, W)`` or ``(B, 3, H, W)`` in [0, 1], sides multiples of ``scale``. The LR
    image is clamped to [0, 1] and, with ``quantize_output`` (default), rounded to 8 bits so
    training inputs look like the 8-bit LR images the network meets at test time.
    """
    scale = _check_scale(scale)
    x = gaussian_blur(hr, sigma) if sigma else hr.float()
    lr = bicubic_downsample(x, scale).clamp(0, 1)
    return quantize(lr) if quantize_output else lr


def make_lr_hr_pair(scale: int, sigma: float = 1.0,
                    quantize_output: bool = True) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """A dataset ``transform``: HR crop ``(3, H, W)`` -> ``(LR, HR)`` with :func:`degrade`.

    Use with ``ImageFolderDataset(root, size=288, transform=make_lr_hr_pair(4))`` (288 px HR
    patches and 72 px LR inputs at x4, as in the paper).
    """
    scale = _check_scale(scale)

    def transform(hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return degrade(hr, scale, sigma, quantize_output), hr

    return transform


def crop_to_multiple(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop bottom/right so both sides are multiples of ``scale`` (MATLAB ``modcrop``)."""
    scale = _check_scale(scale)
    h, w = image.shape[-2:]
    if h < scale or w < scale:
        raise ValueError(f"image of {h}x{w} px is smaller than the scale {scale}")
    return image[..., : h - h % scale, : w - w % scale]


def evaluation_pair(hr_image: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The benchmark protocol's (LR, HR) pair for an 8-bit HR image ``(3, H, W)`` in [0, 1].

    HR is cropped to multiples of ``scale``; LR is its MATLAB-style bicubic reduction rounded
    to 8 bits (no extra blur: benchmarks use plain ``imresize``).
    """
    hr = crop_to_multiple(hr_image, scale)
    return quantize(bicubic_downsample(hr, scale)), hr
