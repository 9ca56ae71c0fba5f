"""Notebook 05's exercises 9 and 10, in the notebook's order: the SR training degradation (Gaussian blur sigma = 1,
then antialiased bicubic downsampling) and PSNR on the BT.601 luma Y with the border shaved (the SR evaluation
protocol)."""
from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ... import losses
from ...color import rgb_to_y_bt601
from ...config import data_root
from ...datafiles import example_image
from ...images import center_crop, load_image
from ...sr import degradation, metrics
from .checking import CheckResult, as_tensor, register, run_check
from .inputs import seeded


# ----------------------------------------------------------------------------- 10. PSNR on Y

def reference_psnr_y(pred: torch.Tensor, target: torch.Tensor, scale: int) -> float:
    """PSNR in dB of the SR protocol: BT.601 luma Y (16-235 of 255), ``scale`` px shaved from every border,
    peak 255 (:func:`perceptual_utils.sr.metrics.psnr`)."""
    return float(metrics.psnr(pred, target, shave_border=scale, y_only=True))


def _mse_psnr(a, b, peak=255.0, log=math.log10, factor=10.0):
    mse = float((a.double() - b.double()).pow(2).mean())
    return factor * log(peak ** 2 / mse)


def _shaved(x, s):
    return metrics.shave(x, s) if s else x


PSNR_MISTAKES: dict[str, tuple[str, Callable]] = {
    "rgb": ("you measured on RGB; the SR protocol measures on the luma Y of BT.601 YCbCr "
            "(Y = 16 + 65.481 R + 128.553 G + 24.966 B for RGB in [0, 1]; color.rgb_to_y_bt601).",
            lambda p, t, s: _mse_psnr(_shaved(p, s) * 255, _shaved(t, s) * 255)),
    "no_shave": ("you did not shave the border: remove `scale` pixels from each side of both images first "
                 "(metrics.shave), as SRCNN's protocol does.",
                 lambda p, t, s: _mse_psnr(rgb_to_y_bt601(p), rgb_to_y_bt601(t))),
    "rgb_no_shave": ("two things: measure on Y (BT.601 luma), not RGB, and shave `scale` pixels from every border.",
                     lambda p, t, s: _mse_psnr(p * 255, t * 255)),
    "full_range_y": ("you used full-range luma (0.299 R + 0.587 G + 0.114 B over 0-255); the protocol's Y is "
                     "MATLAB's rgb2ycbcr, studio swing 16-235 (color.rgb_to_y_bt601), about 1.3 dB apart.",
                     lambda p, t, s: _mse_psnr(255 * (0.299 * _shaved(p, s)[0] + 0.587 * _shaved(p, s)[1]
                                                      + 0.114 * _shaved(p, s)[2]),
                                               255 * (0.299 * _shaved(t, s)[0] + 0.587 * _shaved(t, s)[1]
                                                      + 0.114 * _shaved(t, s)[2]))),
    "peak_mismatch": ("the peak does not match the pixel scale: Y is on 0-255, so the peak is 255 "
                      "(PSNR = 10 log10(255^2 / MSE)).",
                      lambda p, t, s: _mse_psnr(rgb_to_y_bt601(_shaved(p, s)), rgb_to_y_bt601(_shaved(t, s)),
                                                peak=1.0)),
    "natural_log": ("PSNR uses log10, not the natural log: 10 log10(255^2 / MSE).",
                    lambda p, t, s: _mse_psnr(rgb_to_y_bt601(_shaved(p, s)), rgb_to_y_bt601(_shaved(t, s)),
                                              log=math.log)),
    "sqrt_mse": ("20 log10 goes with peak / RMSE = peak / sqrt(MSE) (or 10 log10 with peak^2 / MSE); you used "
                 "the MSE itself.",
                 lambda p, t, s: 20 * math.log10(255.0 / float((rgb_to_y_bt601(_shaved(p, s)).double()
                                                                - rgb_to_y_bt601(_shaved(t, s)).double())
                                                               .pow(2).mean()))),
}


@functools.lru_cache(maxsize=1)
def _sr_images() -> list[tuple[torch.Tensor, int]]:
    """A real HR image (Set5's butterfly, else scikit-image's astronaut) cropped to 48 px, and its scale."""
    path = data_root() / "sr" / "Set5" / "butterfly.png"
    if path.is_file():
        hr = load_image(path)
    else:
        hr = example_image(kind="content", name="chicago.jpg", size=64)[0]
    return [(center_crop(hr, 48).contiguous(), 4), (center_crop(hr, 36).contiguous(), 3)]


def _psnr_cases() -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    cases = []
    for hr, s in _sr_images():
        sr = degradation.bicubic_upsample(degradation.evaluation_pair(hr, s)[0], s)
        cases.append((sr, hr, s))
    g = seeded(60)
    a = torch.rand(3, 20, 24, generator=g)
    # a prediction with larger errors near the border, so the shave matters
    noise = 0.05 * torch.randn(3, 20, 24, generator=g)
    noise[:, :2] *= 6
    cases.append(((a + noise).clamp(0, 1), a, 2))
    b = torch.rand(3, 16, 16, generator=g)
    cases.append(((b * 0.8 + 0.1).clamp(0, 1), b, 4))
    return cases


def _float_compare(got, want, tol: float = 1e-3) -> bool:
    g = as_tensor(got)
    return g.numel() == 1 and abs(float(g) - float(want)) <= tol


def _psnr_explain(got, want, case):
    g = as_tensor(got)
    if g.numel() != 1:
        return f"return one number (dB) per image pair, got a tensor of shape {tuple(g.shape)}.", "shape"
    return None


def check_psnr_y(fn: Callable | None, verbose: bool = True) -> CheckResult:
    """Check ``fn(pred, target, scale) -> float``: PSNR in dB on the BT.601 luma Y (0-255 scale, peak 255) after
    shaving ``scale`` px from every border; images ``(3, H, W)`` RGB in [0, 1]
    (reference: :func:`perceptual_utils.sr.metrics.psnr` with ``shave_border=scale, y_only=True``)."""
    cases = _psnr_cases()
    return run_check("psnr_y", fn, lambda p, t, s: reference_psnr_y(p, t, s), cases, PSNR_MISTAKES,
                     _float_compare,
                     f"{len(cases)} image pairs (a real HR image against its bicubic x4 and x3 reconstruction, "
                     "2 random pairs), to 0.001 dB", explain=_psnr_explain, verbose=verbose, use=reference_psnr_y)


register(10, "psnr_y", check_psnr_y, metrics.psnr, """
        def psnr_y(pred, target, scale):
            y_p = rgb_to_y_bt601(pred)[..., scale:-scale, scale:-scale].double()    # Y in 16..235, shaved
            y_t = rgb_to_y_bt601(target)[..., scale:-scale, scale:-scale].double()
            mse = (y_p - y_t).pow(2).mean()
            return float(10 * torch.log10(255**2 / mse))
    """)


# ----------------------------------------------------------------------------- 9. SR degradation

def reference_degrade(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The paper's training degradation without the final 8-bit rounding: Gaussian blur sigma = 1, then
    antialiased bicubic downsampling by ``scale`` (:func:`perceptual_utils.sr.degradation.degrade`)."""
    return degradation.degrade(hr, scale, sigma=1.0, quantize_output=False)


def _interp(x, scale, mode, antialias):
    h, w = x.shape[-2:]
    kw = {"align_corners": False, "antialias": antialias} if mode in ("bilinear", "bicubic") else {}
    return F.interpolate(x[None].float(), size=(h // scale, w // scale), mode=mode, **kw)[0].clamp(0, 1)


DEGRADE_MISTAKES: dict[str, tuple[str, Callable]] = {
    "no_blur": ("the Gaussian blur is missing: blur with sigma = 1 first (degradation.gaussian_blur), then "
                "downsample.", lambda x, s: degradation.bicubic_downsample(x, s).clamp(0, 1)),
    "blur_after": ("blur first, then downsample: blurring the small image removes detail the network should learn "
                   "to restore and leaves the aliasing in.",
                   lambda x, s: degradation.gaussian_blur(degradation.bicubic_downsample(x, s), 1.0).clamp(0, 1)),
    "no_antialias": ("bicubic without antialiasing (F.interpolate's default) aliases when shrinking: use "
                     "antialias=True, which is MATLAB's imresize (degradation.bicubic_downsample).",
                     lambda x, s: _interp(degradation.gaussian_blur(x, 1.0), s, "bicubic", False)),
    "bilinear": ("you downsampled bilinearly; the paper uses bicubic (antialiased, MATLAB's imresize).",
                 lambda x, s: _interp(degradation.gaussian_blur(x, 1.0), s, "bilinear", True)),
    "nearest": ("you subsampled (nearest neighbour / taking every scale-th pixel); the paper uses antialiased "
                "bicubic downsampling.",
                lambda x, s: degradation.gaussian_blur(x, 1.0)[..., ::s, ::s].clamp(0, 1)),
    "area": ("you averaged scale x scale blocks (area / average pooling); the paper uses antialiased bicubic.",
             lambda x, s: _interp(degradation.gaussian_blur(x, 1.0), s, "area", False)),
    "sigma_2": ("the blur is too strong: sigma = 1.0 (you used about 2).",
                lambda x, s: degradation.bicubic_downsample(degradation.gaussian_blur(x, 2.0), s).clamp(0, 1)),
    "sigma_half": ("the blur is too weak: sigma = 1.0 (you used about 0.5).",
                   lambda x, s: degradation.bicubic_downsample(degradation.gaussian_blur(x, 0.5), s).clamp(0, 1)),
}


def _degrade_cases() -> list[tuple[torch.Tensor, int]]:
    hr = _sr_images()[0][0]
    g = seeded(70)
    return [(hr, 4), (hr[:, :36, :36].contiguous(), 3), (hr[:, :24, :32].contiguous(), 2),
            (torch.rand(3, 24, 24, generator=g), 4)]


def _lr_compare(got, want) -> bool:
    g, w = as_tensor(got), as_tensor(want)
    if g.dim() == 4 and g.shape[0] == 1:
        g = g[0]
    # 8-bit rounding of the result is allowed (half a grey level), nothing more
    return g.shape == w.shape and float((g - w).abs().max()) <= 0.5 / 255 + 1e-5


def _degrade_explain(got, want, case):
    g, w = as_tensor(got), as_tensor(want)
    if g.dim() == 4 and g.shape[0] == 1:
        g = g[0]
    hr, s = case
    if g.shape != w.shape:
        return (f"the LR image should be {tuple(w.shape)} (HR {tuple(hr.shape)} shrunk by {s}), got "
                f"{tuple(g.shape)}.", "shape")
    tv_g, tv_w = float(losses.total_variation_loss(g[None])), float(losses.total_variation_loss(w[None]))
    if float((g - w).abs().mean()) < 0.01:
        return (f"close, but not equal (max difference {float((g - w).abs().max()) * 255:.1f} grey levels): "
                "check the blur kernel (sigma 1, radius ceil(3 sigma) = 3, reflection padding) and the bicubic "
                "resize (antialias=True).", "close")
    return (f"your LR image is {'sharper' if tv_g > tv_w else 'blurrier'} than the reference: blur sigma = 1, then "
            "antialiased bicubic downsampling.", "different")


def check_degradation(fn: Callable | None, verbose: bool = True) -> CheckResult:
    """Check ``fn(hr, scale) -> lr``: the paper's SR training degradation, Gaussian blur sigma = 1 then bicubic
    downsampling (antialiased, as MATLAB's imresize); ``hr`` is ``(3, H, W)`` in [0, 1] with sides multiples of
    ``scale`` (reference: :func:`perceptual_utils.sr.degradation.degrade`; rounding to 8 bits is optional)."""
    cases = _degrade_cases()
    return run_check("degradation", fn, reference_degrade, cases, DEGRADE_MISTAKES, _lr_compare,
                     f"{len(cases)} images (a real HR image at x4, x3, x2, and random pixels), to half a grey level",
                     explain=_degrade_explain, verbose=verbose)


register(9, "degradation", check_degradation, degradation.degrade, """
        def degrade(hr, scale):
            blurred = gaussian_blur(hr, sigma=1.0)                       # 1. blur, sigma = 1
            return bicubic_downsample(blurred, scale).clamp(0, 1)        # 2. antialiased bicubic
    """)
