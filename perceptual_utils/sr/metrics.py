"""Image-quality metrics of the super-resolution benchmarks: PSNR, SSIM and LPIPS.

PSNR and SSIM follow the protocol of the SR literature the paper compares with (SRCNN and its
MATLAB code): both on the luma channel Y of ITU-R BT.601 YCbCr (16-235 on a 0-255 scale,
:func:`perceptual_utils.color.rgb_to_y_bt601`) after shaving ``scale`` pixels from every border;
SSIM with Wang et al.'s constants (11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03,
L = 255) averaged over the positions where the window fits inside the image.

LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric") is the perceptual metric the paper did not have: unit-normalise VGG-16 activations at
relu1_2 ... relu5_3 along the channels, square their differences, weight the channels with
linear heads calibrated on human judgements, average over space, sum over layers. We run the
heads shipped inside the ``lpips`` pip package (``lpips/weights/v0.1/vgg.pth``) on our own
VGG-16 (:class:`~perceptual_utils.vgg.network.LossNetwork`), so nothing is downloaded.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..color import rgb_to_y_bt601
from ..vgg.network import LossNetwork, require_layers

#: LPIPS-VGG taps (the last ReLU of each of VGG-16's five blocks) and their channel counts.
LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
LPIPS_CHANNELS = (64, 128, 256, 512, 512)


def _batch(x: torch.Tensor) -> torch.Tensor:
    if x.dim() == 3:
        return x.unsqueeze(0)
    if x.dim() != 4:
        raise ValueError(f"expected an image (C, H, W) or a batch (B, C, H, W), got shape {tuple(x.shape)}")
    return x


def shave(image: torch.Tensor, border: int) -> torch.Tensor:
    """Remove ``border`` pixels from each side (the SR protocol shaves ``scale`` pixels)."""
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    if border == 0:
        return image
    h, w = image.shape[-2:]
    if h <= 2 * border or w <= 2 * border:
        raise ValueError(f"image of {h}x{w} px is too small to shave {border} px from each border")
    return image[..., border:-border, border:-border]


def _prepare(pred: torch.Tensor, target: torch.Tensor, shave_border: int,
             y_only: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB in [0, 1] -> (Y in [16, 235], or RGB in [0, 255]) as float64 batches, shaved."""
    pred, target = _batch(pred), _batch(target)
    if pred.shape != target.shape:
        raise ValueError(f"images differ in shape: {tuple(pred.shape)} vs {tuple(target.shape)}")
    pred, target = pred.double(), target.double()
    if y_only:
        if pred.shape[1] != 3:
            raise ValueError(f"the Y channel needs RGB images, got {pred.shape[1]} channels")
        pred, target = rgb_to_y_bt601(pred), rgb_to_y_bt601(target)
    else:
        pred, target = pred * 255.0, target * 255.0
    return shave(pred, shave_border), shave(target, shave_border)


def psnr(pred: torch.Tensor, target: torch.Tensor, shave_border: int = 0, y_only: bool = True) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, per image (shape ``(B,)``; a scalar for single images).

    Inputs are RGB in [0, 1]; compared on the BT.601 luma Y (``y_only``, the SR protocol) or on
    all RGB channels, on a 0-255 scale (peak 255). Identical images give ``inf``.
    """
    single = pred.dim() == 3
    a, b = _prepare(pred, target, shave_border, y_only)
    mse = (a - b).pow(2).flatten(1).mean(1)
    out = 10.0 * torch.log10(255.0**2 / mse)
    return out[0] if single else out


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    g = g / g.sum()
    return torch.outer(g, g)


def ssim_map(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0, window: int = 11,
             sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """SSIM map of two ``(B, C, H, W)`` batches over the positions where the window fits ("valid")."""
    if min(a.shape[-2:]) < window:
        raise ValueError(f"images of {a.shape[-2]}x{a.shape[-1]} px are smaller than the {window}x{window} SSIM window")
    c = a.shape[1]
    w = _gaussian_window(window, sigma).to(a).expand(c, 1, window, window)

    def filt(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, w, groups=c)

    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_a, mu_b = filt(a), filt(b)
    # Population (biased) local variances, as in Wang et al.'s reference code.
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def ssim(pred: torch.Tensor, target: torch.Tensor, shave_border: int = 0, y_only: bool = True) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) per image (``(B,)``; a scalar for single images).

    RGB inputs in [0, 1]; on the Y channel (``y_only``) or averaged over RGB, data range 255,
    11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03. Equals scikit-image's
    ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=255)``.
    """
    single = pred.dim() == 3
    a, b = _prepare(pred, target, shave_border, y_only)
    out = ssim_map(a, b).flatten(1).mean(1)
    return out[0] if single else out


# ----------------------------------------------------------------------------- LPIPS

def lpips_weights_path(version: str = "0.1") -> Path:
    """The VGG linear heads shipped inside the ``lpips`` pip package (``lpips/weights/v0.1/vgg.pth``)."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("LPIPS needs the calibration weights of the `lpips` package: pip install lpips "
                                "(or pass lpips=False / --no-lpips)")
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / f"v{version}" / "vgg.pth"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: LPIPS weights missing from the installed `lpips` package")
    return path


class LPIPSMetric(nn.Module):
    """LPIPS (VGG variant, v0.1) on the package's local VGG-16; lower is more similar.

    Args:
        weights: VGG-16 weights for :class:`LossNetwork` (``None``: resolved as usual).
        lin_weights: path of the linear heads (``None``: from the installed ``lpips`` package).
        loss_network: reuse an existing loss network that taps :data:`LPIPS_LAYERS`.

    Normalisation: LPIPS maps images in [-1, 1] through ``(x - shift) / scale`` with
    ``shift = [-.030, -.088, -.188]`` and ``scale = [.458, .448, .450]``, which is exactly
    ``2 * mean - 1`` and ``2 * std`` of the ImageNet statistics; for images in [0, 1] that is the
    same ``(x - mean) / std`` our loss network applies, so inputs are simply RGB in [0, 1].
    """

    def __init__(self, weights: str | os.PathLike | None = None, lin_weights: str | os.PathLike | None = None,
                 loss_network: LossNetwork | None = None):
        super().__init__()
        if loss_network is None:
            loss_network = LossNetwork(LPIPS_LAYERS, weights=weights)
        require_layers(loss_network, LPIPS_LAYERS, "the LPIPS loss network")
        self.net = loss_network
        path = Path(lin_weights) if lin_weights is not None else lpips_weights_path()
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        self.lins = nn.ParameterList()
        for i, channels in enumerate(LPIPS_CHANNELS):
            key = f"lin{i}.model.1.weight"
            if key not in state or tuple(state[key].shape) != (1, channels, 1, 1):
                raise ValueError(f"{path}: not LPIPS-VGG linear weights (missing or misshapen {key})")
            self.lins.append(nn.Parameter(state[key].float(), requires_grad=False))
        self.eval()

    @staticmethod
    def _unit(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
        # lpips.normalize_tensor: divide by the channel-wise L2 norm (eps added to the norm).
        return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """LPIPS distance per image, shape ``(B,)``, for RGB batches in [0, 1] of equal shape."""
        pred, target = _batch(pred), _batch(target)
        if pred.shape != target.shape:
            raise ValueError(f"images differ in shape: {tuple(pred.shape)} vs {tuple(target.shape)}")
        return self.distance(self.features(pred), self.features(target))

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The unit-normalised VGG features LPIPS compares, for an RGB batch in [0, 1].

        Computing a reference image's features once and passing them to :meth:`distance` for
        every candidate halves the cost of scoring several methods against the same image."""
        feats = self.net(_batch(images).float())
        return {name: self._unit(feats[name]) for name in LPIPS_LAYERS}

    def distance(self, fa: dict[str, torch.Tensor], fb: dict[str, torch.Tensor]) -> torch.Tensor:
        """LPIPS distance per image, shape ``(B,)``, between two sets of :meth:`features`."""
        first = fa[LPIPS_LAYERS[0]]
        if first.shape != fb[LPIPS_LAYERS[0]].shape:
            raise ValueError(f"features differ in shape: {tuple(first.shape)} vs {tuple(fb[LPIPS_LAYERS[0]].shape)}")
        total = torch.zeros(first.shape[0], device=first.device)
        for name, lin in zip(LPIPS_LAYERS, self.lins):
            total = total + F.conv2d((fa[name] - fb[name]).pow(2), lin).mean(dim=(1, 2, 3))
        return total
