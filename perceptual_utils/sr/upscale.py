"""Super-resolve images with a trained :class:`~perceptual_utils.sr.net.SuperResolutionNet`.

``python -m perceptual_utils upscale --model x4.safetensors --input photo.png --output big.png``

Post-processing (the paper, Section 4.2): the network output's colour histograms are matched to
the low-resolution input's, which removes small colour shifts the network introduces.
Large images are processed in overlapping tiles (:func:`~perceptual_utils.tiling.tiled_apply`),
so memory stays bounded; batch norm runs with its stored statistics, so tiles agree, and
instance norm uses whole-image statistics computed tile by tile
(:func:`~perceptual_utils.tiling.tiled_apply_exact`).
"""
from __future__ import annotations

import argparse
import os

import torch
from torch import nn

from ..cli_options import add_device_option, add_progress_option, add_threads_option
from ..config import resolve_device
from ..images import match_histograms
from ..inference import choose_path
from ..process_files import process_images
from ..shipped_models import load_model  # a path or a shipped model's name
from ..model_io import check_finite_output
from ..tiling import check_tile, has_instance_norm, receptive_field, tiled_apply, tiled_apply_exact
from ..validation import check_device, check_int

#: Default tile side and overlap in *low-resolution* pixels. The network sees about 14 LR px
#: around each pixel, so a 32 px overlap hides every tile border.
DEFAULT_TILE = 256
DEFAULT_OVERLAP = 32


def load_sr_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Load a super-resolution model file; any other kind (e.g. a style model) raises ``ModelFileError``."""
    return load_model(path, kind="super_resolution", device=device)


def model_scale(model: nn.Module) -> int:
    """The upsampling factor of a super-resolution network."""
    config = getattr(model, "config", None)
    if not isinstance(config, dict) or "scale" not in config:
        raise ValueError(f"{type(model).__name__} is not a super-resolution network (no config['scale'])")
    return int(config["scale"])


@torch.no_grad()
def upscale(model: nn.Module, image: torch.Tensor, match_histogram: bool = True, tile: int | None = DEFAULT_TILE,
            overlap: int = DEFAULT_OVERLAP, amp: bool = True) -> torch.Tensor:
    """Super-resolve one image ``(3, h, w)`` (or a batch) in [0, 1] by the model's scale.

    Args:
        model: a :class:`SuperResolutionNet`, run on the machine's fast inference path
            (:func:`perceptual_utils.inference.choose_path`, on the model's device; pass a
            prepared ``choose_path(model).net`` to prepare it once for many images).
        image: RGB in [0, 1].
        match_histogram: match each colour channel's histogram to the input's (the paper's post-processing).
        tile: tile side in input pixels for large images (``None`` or 0: whole image at once).
        overlap: overlap between tiles in input pixels.
        amp: ``False``: float32 (see :func:`~perceptual_utils.inference.select_path`).
    """
    scale = model_scale(model)
    fast = choose_path(model, device=next(model.parameters()).device, amp=amp)
    model = fast.net
    single = image.dim() == 3
    x = image.unsqueeze(0) if single else image
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"upscale expects an RGB image (3, H, W), got shape {tuple(image.shape)}")
    device = next(model.parameters()).device
    x = x.to(device).float()
    if tile and int(tile) < 16:
        raise ValueError(f"tile must be at least 16 px (or 0 for the whole image at once), got {tile}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0 px, got {overlap}")
    if tile and max(x.shape[-2:]) > int(tile) and has_instance_norm(model):
        # Instance norm: whole-image statistics (computed tile by tile), halo-cropped tiles: exact.
        halo = -(-max(receptive_field(model), int(overlap)) // 4) * 4
        core = max(int(tile) - 2 * halo, int(tile) // 2, 4)
        out = tiled_apply_exact(model, x, tile=core + 2 * halo, halo=halo, scale=scale,
                                run=fast.runner()).to(device)
    elif tile:
        out = tiled_apply(fast, x, tile=int(tile), overlap=min(int(overlap), (int(tile) - 1) // 2), scale=scale)
    else:
        out = fast(x)
    out = check_finite_output(out).clamp(0, 1)
    if match_histogram:
        out = torch.stack([match_histograms(o, i) for o, i in zip(out, x)])
    return out[0] if single else out


def _run(args: argparse.Namespace) -> int:
    check_int("--tile", args.tile, minimum=16, zero_ok=True, optional=True)
    check_device(args.device)
    # Prepared once (batch norm folded, fast path), not once per image.
    model = choose_path(load_sr_model(args.model, device=resolve_device(args.device)), amp=not args.no_amp,
                        device=args.device).net
    check_tile(model, args.tile)  # tiles below twice the receptive field are mostly thrown-away context

    def fn(image: torch.Tensor) -> torch.Tensor:
        return upscale(model, image, match_histogram=not args.no_histogram_match, tile=args.tile,
                       amp=not args.no_amp).cpu()

    # Video frames one per pass: an output frame has scale**2 times the pixels, so a batch would multiply memory for little speed.
    return process_images(args.input, args.output, fn, progress=args.progress, video_batch=1, protected=[args.model])


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add the ``upscale`` command."""
    p = sub.add_parser("upscale", help="super-resolve images with a trained model",
                       description="Super-resolve images with a trained super-resolution model file.")
    p.add_argument("--model", required=True, help="super-resolution model file (.safetensors)")
    p.add_argument("--input", required=True, nargs="+",
                   help="image and video files and/or folders (videos keep their frame rate and audio)")
    p.add_argument("--output", required=True,
                   help="output file (for one input) or folder (results keep their names)")
    p.add_argument("--no-histogram-match", action="store_true",
                   help="skip matching the output's colour histograms to the input's")
    p.add_argument("--tile", type=int, default=DEFAULT_TILE,
                   help=f"tile side in input pixels for large images, 0 = whole image (default {DEFAULT_TILE})")
    add_device_option(p)
    add_threads_option(p)
    p.add_argument("--no-amp", action="store_true",
                   help="plain float32 (default: float16 on CUDA, bf16 on CPUs with native bf16)")
    add_progress_option(p)
    p.set_defaults(func=_run)
