"""Stylise images with a trained feed-forward network: one forward pass per image.

The fast inference path (:func:`prepare_model`, :mod:`perceptual_utils.inference`): inference mode,
batch norm folded into the convs (paper variant), exact float32 layer rewrites on the CPU (bf16
autocast where the CPU has native bf16), channels-last memory layout and half precision on CUDA. Large images are cut
into tiles (:func:`~perceptual_utils.tiling.tiled_apply_exact`) so memory stays bounded.

Tiling and exactness: the paper network's receptive field is 109 px (see notebook 03), so an
output pixel more than 54 px inside a tile sees only real image content. Each tile therefore
carries a halo at least as wide as the receptive field and only its core is kept; with batch norm
in eval mode that equals the whole-image result. Instance norm (the ``modern`` variant) would
normalise each tile with its own statistics (a patchwork of contrasts), so each instance norm's
statistics are first computed over the whole image (tile by tile, layer by layer) and then
frozen. The tiled result equals the whole-image one for every network kind; instance-norm
networks cost about ``1 + norms / 2`` forward passes when tiled (15 norms for ``modern``).

Multi-style networks (``StyleTransferNet(num_styles=N)``, conditional instance norm) take a
``style`` (name or index) or a ``mix`` of styles (``{"starry_night": 0.7, "wave": 0.3}``: the
convex mix of the styles' per-norm scales and shifts); ``strength`` fades the result toward the
photo (see :func:`stylize`). Tiling handles the conditional norms like plain instance norms.
"""
from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..cli_options import add_command, add_device_option, add_progress_option, add_threads_option
from ..color import preserve_color as _preserve_color
from ..images import load_image
from ..inference import choose_path
from ..process_files import process_images
from ..shipped_models import load_model  # a path or a shipped model's name
from ..model_io import check_finite_output
from ..tiling import check_tile, receptive_field, tiled_apply_exact
from ..validation import check_device, check_int
from ..video import DEFAULT_BATCH as DEFAULT_VIDEO_BATCH

#: Images with more pixels than this are tiled automatically (about 2048 x 2048).
AUTO_TILE_PIXELS = 2048 * 2048
DEFAULT_TILE = 1024
DEFAULT_OVERLAP = 128


def prepare_model(model: nn.Module | str | os.PathLike, device: str | torch.device | None = None,
                  amp: bool = True) -> nn.Module:
    """An inference-ready copy of a style network (or a model file's network) on the fast path.

    The machine's fastest exact-enough path (:func:`perceptual_utils.inference.choose_path`):
    batch norm folded into the convs, eval mode, on ``device`` (default: CUDA if available);
    float16 and channels-last on CUDA, bf16 autocast on CPUs with native bf16, exact float32
    rewrites elsewhere; ``amp=False`` for float32. The copy carries its ``inference_path`` so
    :func:`stylize` does not prepare it again.

    Raises:
        ModelFileError: a path that is not a style transfer model file (missing, corrupted, or
            another kind such as a super-resolution model).
    """
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model, kind="style_transfer")
    return choose_path(model, device=device, amp=amp).net  # a prepared copy comes back as it is


def _as_batch(image: torch.Tensor) -> torch.Tensor:
    """(3|1|4, H, W) or (B, 3|1|4, H, W) -> (B, 3, H, W): grey is repeated, alpha dropped."""
    x = image.unsqueeze(0) if image.dim() == 3 else image
    if x.dim() != 4 or x.shape[1] not in (1, 3, 4):
        raise ValueError(f"stylize expects an image (C, H, W) or batch (B, C, H, W) with 1, 3 or 4 "
                         f"channels, got {tuple(image.shape)}")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x[:, :3].float()


def style_names(model: nn.Module) -> list[str]:
    """The style names of a (possibly multi-style) network, from its model file's training info
    (``"styles"``, or ``"style_name"`` of a single-style model); ``[]`` when unknown."""
    info = getattr(model, "training_info", None) or {}
    n = int(getattr(model, "num_styles", 1))
    names = info.get("styles")
    if isinstance(names, list) and len(names) == n and all(isinstance(x, str) for x in names):
        return list(names)
    if n == 1 and isinstance(info.get("style_name"), str):
        return [info["style_name"]]
    return []


def _style_index(model: nn.Module, key: Any, what: str) -> int:
    """A style name or index (int or digit string) -> index, with a one-line error."""
    n = int(getattr(model, "num_styles", 1))
    names = style_names(model)
    if isinstance(key, bool):
        raise ValueError(f"{what}: {key!r} is not a style name or index")
    if isinstance(key, str) and key in names:
        return names.index(key)
    if isinstance(key, int) or (isinstance(key, str) and key.strip().isdigit()):
        idx = int(key)
        if 0 <= idx < n:
            return idx
        raise ValueError(f"{what}: style index {idx} is out of range (the model has {n} style(s): 0..{n - 1})")
    known = ", ".join(names) if names else f"indices 0..{n - 1} (the model file names no styles)"
    raise ValueError(f"{what}: unknown style {key!r}; known: {known}")


def resolve_style(model: nn.Module, style: int | str | torch.Tensor | None = None,
                  mix: Mapping[Any, float] | None = None) -> int | torch.Tensor | None:
    """What :meth:`StyleTransferNet.forward` takes for ``style`` (a name or index) or ``mix``
    (``{name or index: weight}``, weights non-negative with a sum > 0, normalised to sum to 1;
    styles not named get 0). ``None`` when neither is given (style 0).

    Raises:
        ValueError: both given, an unknown name, an index out of range, or invalid weights
            (negative, not a number, all zero), with a one-line message.
    """
    if style is not None and mix is not None:
        raise ValueError("give either a style or a mix of styles, not both")
    if mix is not None:
        n = int(getattr(model, "num_styles", 1))
        if not isinstance(mix, Mapping) or not mix:
            raise ValueError("mix: give at least one style=weight")
        weights = [0.0] * n
        for key, value in mix.items():
            idx = _style_index(model, key, "mix")
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"mix: the weight of {key!r} must be a number, got {value!r}") from None
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"mix: weights must be non-negative numbers, got {key}={value!r}")
            weights[idx] += v
        if sum(weights) <= 0:
            raise ValueError("mix: the weights sum to 0; give at least one positive weight")
        total = sum(weights)
        return torch.tensor([v / total for v in weights])
    if style is None or isinstance(style, torch.Tensor):
        return style
    return _style_index(model, style, "style")


def check_strength(strength: float) -> float:
    """``strength`` as a float in [0, 1], or a one-line ValueError."""
    try:
        s = float(strength)
    except (TypeError, ValueError):
        raise ValueError(f"strength must be a number in [0, 1], got {strength!r}") from None
    if not 0.0 <= s <= 1.0:  # also rejects nan
        raise ValueError(f"strength must be in [0, 1], got {strength!r}")
    return s


@torch.inference_mode()
def stylize(model: nn.Module | str | os.PathLike, image: torch.Tensor | str | os.PathLike,
            preserve_color: bool = False, tile: int | None = None, overlap: int = DEFAULT_OVERLAP,
            device: str | torch.device | None = None, amp: bool = True,
            style: int | str | torch.Tensor | None = None, mix: Mapping[Any, float] | None = None,
            strength: float = 1.0) -> torch.Tensor:
    """Stylise ``image`` with a trained network in one forward pass.

    Args:
        model: a :class:`StyleTransferNet`, a prepared one (:func:`prepare_model`, fastest for
            many images), or a model file path.
        image: RGB (or grey/RGBA) tensor in [0, 1], ``(C, H, W)`` or ``(B, C, H, W)``, or an image file.
        preserve_color: keep the input's colours, transfer only luminance (Gatys et al. 2016).
        tile: tile side in px; ``None`` tiles automatically above ~4 MP (with 1024 px tiles),
            ``0`` never tiles.
        overlap: minimum context px around each tile's kept core (the receptive field is always
            used at least); tiles of ``tile`` px keep a core of ``tile - 2 * halo`` px (at least
            ``tile // 2``), so the result equals the untiled one.
        device, amp: see :func:`prepare_model` (``amp=False``: float32).
        style: which style of a multi-style network: its name (as recorded in the model file,
            see :func:`style_names`) or index; or a tensor as :meth:`StyleTransferNet.forward`
            takes it. Default: style 0.
        mix: ``{name or index: weight}``: a convex mix of styles (weights non-negative, sum > 0,
            normalised to 1) applied to the conditional norms' scales and shifts; a one-hot mix
            is exactly the single style.
        strength: in [0, 1], how much of the stylisation to apply: the result is
            ``strength * stylised + (1 - strength) * photo``, a blend in pixel space (after
            ``preserve_color``). Why in pixel space: moving the norms' scales and shifts toward
            a "neutral" setting (gamma = 1, beta = 0) does not give the photo back, because the
            convolutions were never trained to reproduce it (that path fades into a washed-out,
            blurred image with the style's texture still there); the network has no "photo"
            style to interpolate toward. The pixel blend is exact at both ends (strength 0
            returns the photo, without running the network; 1 is the plain stylisation),
            monotone in between, free, and works for every model, single-style ones included.
            Mixing γ, β between styles (``mix``) is what looks best *between paintings*;
            the blend is what fades a painting toward the photo.

    Returns:
        The stylised image(s) on the CPU, float32 RGB in [0, 1], at the input's size and batch shape.
    """
    if isinstance(image, (str, os.PathLike)):
        image = load_image(image)
    strength = check_strength(strength)
    net = prepare_model(model, device=device, amp=amp)
    fast = choose_path(net)
    selection = resolve_style(net, style, mix)
    if selection is not None and hasattr(net, "style_selection"):
        net.style_selection(selection)  # validate now (one-line errors), not inside a tile
    x = _as_batch(image)
    h, w = x.shape[-2:]
    if tile is None:
        tile = DEFAULT_TILE if h * w > AUTO_TILE_PIXELS else 0
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0 px, got {overlap}")
    if tile and tile < 16:
        raise ValueError(f"tile must be at least 16 px (or 0 for no tiling), got {tile}")
    run_on = fast.runner(selection)  # the path's device, dtype, layout and autocast; float32 out

    if strength == 0.0:  # exactly the photo; no need to run the network
        out = x.clone()
        return out[0] if image.dim() == 3 else out
    # The image stays on the CPU when tiling so only one tile at a time lives on the device.
    if not (tile and max(h, w) > tile):
        out = fast(x, selection)  # whole images: the path's backend (tiles always run through torch)
    else:
        # Each tile carries a halo as wide as the receptive field (or ``overlap``, if larger) and
        # only its core is kept; instance norms use whole-image statistics computed tile by tile.
        # So the result equals the whole-image pass for every network kind.
        halo = -(-max(receptive_field(net), overlap) // 4) * 4
        core = max(tile - 2 * halo, tile // 2, 4)
        out = tiled_apply_exact(net, x, tile=core + 2 * halo, halo=halo, run=run_on)
    out = check_finite_output(out.float().cpu()).clamp_(0, 1)  # in place: no second whole-image float copy
    if preserve_color:
        out = _preserve_color(out, x)
    if strength < 1.0:  # pixel-space blend toward the photo (see the docstring for why)
        out = torch.lerp(x.to(out.dtype), out, strength).clamp_(0, 1)
    return out[0] if image.dim() == 3 else out


def stylize_frames(model, frames: torch.Tensor, *, style=None, mix=None, strength: float = 1.0) -> torch.Tensor:
    """Stylise ``(B, 3, H, W)`` frames (or one ``(3, H, W)``) with a style network: the one call through
    which the live panel (:mod:`.teaching.live`), ``benchmarks/video_flicker.py`` and notebook 07 stylise
    frames. It is :func:`stylize` (``style``, ``mix`` and ``strength`` as there), which runs the
    machine's fast inference path (:func:`perceptual_utils.inference.choose_path`). Pass a network
    prepared once (:func:`prepare_model`); a plain network or a model file is prepared on every call.
    Frames are never tiled: they are small."""
    return stylize(model, frames, style=style, mix=mix, strength=strength, tile=0)


# ----------------------------------------------------------------------------- command line

def _run_cli(args: argparse.Namespace) -> int:
    """Stylise image and video files, or folders of them, with a trained feed-forward network. Unreadable
    inputs are reported on one line each; the others are still processed (exit code 1 if any failed)."""
    check_int("--tile", args.tile, minimum=16, zero_ok=True, optional=True)
    check_int("--overlap", args.overlap, minimum=0)
    check_device(args.device)
    strength = check_strength(args.strength) if args.strength is not None else 1.0
    mix = parse_mix(args.mix) if args.mix is not None else None
    net = prepare_model(args.model, device=args.device, amp=not args.no_amp)
    check_tile(net, args.tile, args.overlap)  # --tile 16: an 8 px core in a 128 px halo, minutes per photo
    # Resolved once, before any image: a bad name or weight is one error, not one per image.
    selection = resolve_style(net, args.style, mix)
    if selection is not None:
        net.style_selection(selection)
    check_int("--batch", args.batch, minimum=1)
    # One function for an image (3, H, W) and for a batch of video frames (B, 3, H, W).
    return process_images(
        args.input, args.output,
        lambda img: stylize(net, img, preserve_color=args.preserve_color, tile=args.tile, overlap=args.overlap,
                            style=selection, strength=strength),
        progress=args.progress, video_batch=args.batch, protected=[args.model])


def parse_mix(text: str) -> dict[str, float]:
    """``"starry_night=0.7,wave=0.3"`` -> ``{"starry_night": 0.7, "wave": 0.3}`` (weights are
    checked against the model by :func:`resolve_style`)."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--mix: expected NAME=WEIGHT pairs separated by commas, got {part!r}")
        try:
            out[name.strip()] = out.get(name.strip(), 0.0) + float(value)
        except ValueError:
            raise ValueError(f"--mix: the weight of {name.strip()!r} must be a number, got {value.strip()!r}") from None
    if not out:
        raise ValueError("--mix: give at least one NAME=WEIGHT")
    return out


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``stylize`` to the command line."""
    p = add_command(subparsers, "stylize", _run_cli, help="stylise images and videos with a trained style network")
    p.add_argument("--model", required=True, help="style transfer model file (.safetensors)")
    p.add_argument("--input", required=True, nargs="+",
                   help="image and video files and/or folders (videos keep their frame rate and audio)")
    p.add_argument("--output", required=True,
                   help="output file (one input) or folder (results keep the input file names)")
    p.add_argument("--preserve-color", action="store_true", help="keep the input's colours (luminance only)")
    style = p.add_mutually_exclusive_group()
    style.add_argument("--style", help="style of a multi-style model, by name or index (default: the first)")
    style.add_argument("--mix", metavar="NAME=W,...",
                       help="mix styles of a multi-style model, e.g. starry_night=0.7,wave=0.3 (weights >= 0)")
    p.add_argument("--strength", type=float, default=None,
                   help="0..1: blend of the result with the photo (0 = the photo, 1 = full style; default 1)")
    p.add_argument("--tile", type=int, default=None,
                   help=f"tile side in px for large images (default: {DEFAULT_TILE} above ~4 MP; 0 = never)")
    p.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP, help="tile overlap in px (default: %(default)s)")
    add_device_option(p)
    add_threads_option(p)
    p.add_argument("--no-amp", action="store_true",
                   help="plain float32 (default: float16 on CUDA, bf16 on CPUs with native bf16)")
    p.add_argument("--batch", type=int, default=DEFAULT_VIDEO_BATCH,
                   help="video frames per forward pass (fewer for frames above 1 MP; default: %(default)s)")
    add_progress_option(p)
