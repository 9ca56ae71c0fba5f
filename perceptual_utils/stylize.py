"""Stylise images with a trained feed-forward network: one forward pass per image.

The fast inference path (:func:`prepare_model`): inference mode, batch norm folded into the convs
(paper variant), channels-last memory layout and half precision on CUDA. Large images are cut
into overlapping tiles (:func:`~perceptual_utils.tiling.tiled_apply`) so memory stays bounded.

Tiling and exactness: the paper network's receptive field is 109 px (see notebook 03), so an
output pixel more than 54 px inside a tile sees only real image content and, with batch norm in
eval mode, equals the whole-image result exactly. Only a band near tile borders differs, and the
default overlap (128 px > 109 px) lets the linear blend hand over between tiles before that
band. Instance norm (the ``modern`` variant) normalises with per-tile statistics, so tiles can
differ slightly in contrast; use large tiles for it.
"""
from __future__ import annotations

import argparse
import os

import torch
from torch import nn

from .color import preserve_color as _preserve_color
from .config import default_device
from .images import load_image
from .model_io import load_model
from .style_net import fold_batch_norm
from .tiling import tiled_apply

#: Images with more pixels than this are tiled automatically (about 2048 x 2048).
AUTO_TILE_PIXELS = 2048 * 2048
DEFAULT_TILE = 1024
DEFAULT_OVERLAP = 128


def prepare_model(model: nn.Module | str | os.PathLike, device: str | torch.device | None = None,
                  half: bool | None = None) -> nn.Module:
    """An inference-ready copy of a style network (or a model file's network).

    Folds batch norm into the convs, switches to eval mode, moves to ``device`` (default: CUDA if
    available), and on CUDA uses channels-last and (unless ``half=False``) float16. The copy is
    marked ``inference_ready`` so :func:`stylize` does not prepare it again.

    Raises:
        ModelFileError: a path that is not a style transfer model file (missing, corrupted, or
            another kind such as a super-resolution model).
    """
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model, kind="style_transfer")
    if getattr(model, "inference_ready", False):
        return model
    dev = torch.device(device) if device is not None else default_device()
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {dev} requested but CUDA is not available")
    net = fold_batch_norm(model.module if hasattr(model, "module") else model).to(dev).eval()
    net.requires_grad_(False)
    if dev.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
        if half is not False:
            net = net.half()
    elif half:
        raise ValueError("half precision is only used on CUDA (CPU float16 convolutions are slow)")
    net.inference_ready = True
    return net


def _as_batch(image: torch.Tensor) -> torch.Tensor:
    """(3|1|4, H, W) or (B, 3|1|4, H, W) -> (B, 3, H, W): grey is repeated, alpha dropped."""
    x = image.unsqueeze(0) if image.dim() == 3 else image
    if x.dim() != 4 or x.shape[1] not in (1, 3, 4):
        raise ValueError(f"stylize expects an image (C, H, W) or batch (B, C, H, W) with 1, 3 or 4 "
                         f"channels, got {tuple(image.shape)}")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x[:, :3].float()


@torch.inference_mode()
def stylize(model: nn.Module | str | os.PathLike, image: torch.Tensor | str | os.PathLike,
            preserve_color: bool = False, tile: int | None = None, overlap: int = DEFAULT_OVERLAP,
            device: str | torch.device | None = None, half: bool | None = None) -> torch.Tensor:
    """Stylise ``image`` with a trained network in one forward pass.

    Args:
        model: a :class:`StyleTransferNet`, a prepared one (:func:`prepare_model`, fastest for
            many images), or a model file path.
        image: RGB (or grey/RGBA) tensor in [0, 1], ``(C, H, W)`` or ``(B, C, H, W)``, or an image file.
        preserve_color: keep the input's colours, transfer only luminance (Gatys et al. 2016).
        tile: tile side in px; ``None`` tiles automatically above ~4 MP (with 1024 px tiles),
            ``0`` never tiles.
        overlap: tile overlap in px (blended linearly); capped at ``tile // 4``.
        device, half: see :func:`prepare_model`.

    Returns:
        The stylised image(s) on the CPU, float32 RGB in [0, 1], at the input's size and batch shape.
    """
    if isinstance(image, (str, os.PathLike)):
        image = load_image(image)
    net = prepare_model(model, device=device, half=half)
    param = next(net.parameters())
    x = _as_batch(image)
    h, w = x.shape[-2:]
    if tile is None:
        tile = DEFAULT_TILE if h * w > AUTO_TILE_PIXELS else 0
    if tile and tile < 16:
        raise ValueError(f"tile must be at least 16 px (or 0 for no tiling), got {tile}")
    # Small tiles cannot afford the default overlap: cap it at a quarter of the tile.
    overlap = min(overlap, tile // 4) if tile else overlap

    def run(t: torch.Tensor) -> torch.Tensor:
        t = t.to(param.device, dtype=param.dtype)
        if param.device.type == "cuda":
            t = t.contiguous(memory_format=torch.channels_last)
        return net(t).float()

    # The image stays on the CPU when tiling so only one tile at a time lives on the device.
    out = tiled_apply(run, x, tile=tile, overlap=overlap) if tile and max(h, w) > tile else run(x)
    out = out.float().cpu().clamp(0, 1)
    if preserve_color:
        out = _preserve_color(out, x)
    return out[0] if image.dim() == 3 else out


# ----------------------------------------------------------------------------- command line

def _run_cli(args: argparse.Namespace) -> int:
    from .batch import process_images

    net = prepare_model(args.model, device=args.device, half=False if args.no_half else None)
    return process_images(
        args.input, args.output,
        lambda img: stylize(net, img, preserve_color=args.preserve_color, tile=args.tile, overlap=args.overlap),
        progress=not args.no_progress)


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``stylize`` to the command line."""
    p = subparsers.add_parser(
        "stylize", help="stylise images with a trained style network",
        description="Stylise image files or folders of images with a trained feed-forward network. "
                    "Unreadable inputs are reported on one line each; the others are still processed "
                    "(exit code 1 if any failed).")
    p.add_argument("--model", required=True, help="style transfer model file (.safetensors)")
    p.add_argument("--input", required=True, nargs="+", help="image files and/or folders")
    p.add_argument("--output", required=True,
                   help="output file (one input) or folder (results keep the input file names)")
    p.add_argument("--preserve-color", action="store_true", help="keep the input's colours (luminance only)")
    p.add_argument("--tile", type=int, default=None,
                   help=f"tile side in px for large images (default: {DEFAULT_TILE} above ~4 MP; 0 = never)")
    p.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP, help="tile overlap in px (default: %(default)s)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--no-half", action="store_true", help="float32 on CUDA too")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_cli)
