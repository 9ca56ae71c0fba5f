"""The frames of notebook 02's instructor panel (:mod:`.panel`), computed once and cached on disk.

Everything the sliders show is computed *before* the panel appears (:func:`reconstruction_frames`)
and cached on disk, so moving a slider only swaps one precomputed PNG: instant in a live class.

What a frame is. For each VGG-16 layer ``j`` and each *style share* ``a`` in [0, 1], an image is
optimised from seeded noise to minimise

    ``(1 - a) * l_feat_j(x, y) / l_feat_j(x0, y)  +  a * l_style_j(x, y) / l_style_j(x0, y)``

where ``y`` is the original and ``x0`` the noise start: ``a = 0`` is pure feature inversion (the
paper's Fig. 3), ``a = 1`` pure style reconstruction from the Gram matrix (its style figure), and
values between show how the two losses trade off. Dividing by the losses of the noise start puts
both terms on the same scale (each starts at 1), so the slider means "share of the objective".
Frames are kept at a few iterations of each run, to scrub through the optimisation. Runs use
L-BFGS, except Adam for a Gram term at ``relu1_2`` (:func:`panel_optimizer`), where L-BFGS stalls
from the faint-grey start (a flat grey frame).

Cache. One ``.safetensors`` file per (image, settings) under ``PROJECT_ROOT/data/cache/reconstruction/``
(git-ignored), named by a SHA-256 of the image's 8-bit pixels and the settings. Frames are stored as
8-bit images (what the panel shows anyway); no pickle anywhere. A corrupt or foreign file is
recomputed, never trusted.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from ..config import PROJECT_ROOT
from ..losses import PerceptualLoss
from ..model_io import atomic_write
from ..optimization.gatys import gatys_style_transfer
from ..optimization.runner import ALGORITHM_VERSION, STYLE_ADAM_LR, noise_image
from ..optimization.texture import style_optimizer
from ..vgg.cache import get_loss_network
from ..vgg.network import STYLE_LAYERS, check_layers

DEFAULT_CACHE_DIR = PROJECT_ROOT / "data" / "cache" / "reconstruction"
CACHE_FORMAT = "perceptual_utils.reconstruction_frames/1"
DEFAULT_SHARES = (0.0, 0.5, 1.0)


def _to_uint8(image: torch.Tensor) -> torch.Tensor:
    return (image.detach().float().clamp(0, 1).cpu() * 255 + 0.5).to(torch.uint8)


def _to_float(image: torch.Tensor) -> torch.Tensor:
    return image.float() / 255.0


def cache_key(image: torch.Tensor, settings: dict) -> str:
    """SHA-256 (first 20 hex digits) of the image's 8-bit pixels, its shape, the settings and the
    optimiser's :data:`~perceptual_utils.optimization.runner.ALGORITHM_VERSION` (so a changed algorithm never
    serves stale frames)."""
    h = hashlib.sha256()
    h.update(f"algorithm {ALGORITHM_VERSION}".encode())
    pixels = _to_uint8(image).contiguous()
    h.update(json.dumps(list(pixels.shape)).encode())
    h.update(pixels.numpy().tobytes())
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()[:20]


@dataclass
class FrameSet:
    """Precomputed frames: ``frames[(layer, share)]`` is ``(len(iterations), 3, H, W)`` uint8."""

    original: torch.Tensor
    layers: list[str]
    shares: list[float]
    iterations: list[int]
    frames: dict[tuple[str, float], torch.Tensor]
    settings: dict = field(default_factory=dict)
    path: Path | None = None

    def frame(self, layer: str, share: float, iteration: int) -> torch.Tensor:
        """The image ``(3, H, W)`` in [0, 1] after ``iteration`` updates (one of :attr:`iterations`)."""
        if iteration not in self.iterations:
            raise KeyError(f"no frame at iteration {iteration}; frames exist at {self.iterations}")
        if (layer, share) not in self.frames:
            raise KeyError(f"no frames for layer {layer!r} with style share {share}")
        return _to_float(self.frames[(layer, share)][self.iterations.index(iteration)])

    # -- disk format -----------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (temporary file + rename): an interrupted run never leaves a half file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {"original": _to_uint8(self.original).contiguous()}
        for (layer, share), stack in self.frames.items():
            tensors[f"frames.{layer}.{self.shares.index(share)}"] = stack.contiguous()
        meta = {"format": CACHE_FORMAT, "layers": json.dumps(self.layers), "shares": json.dumps(self.shares),
                "iterations": json.dumps(self.iterations), "settings": json.dumps(self.settings, sort_keys=True)}
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FrameSet":
        """Read a file written by :meth:`save`; ``ValueError`` naming the file if it is not one."""
        path = Path(path)
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            tensors = load_file(str(path))
        except (SafetensorError, OSError, RuntimeError) as exc:
            raise ValueError(f"{path}: not a readable frame cache ({exc})") from None
        if meta.get("format") != CACHE_FORMAT:
            raise ValueError(f"{path}: not a frame cache of this package (format {meta.get('format')!r})")
        try:
            layers = json.loads(meta["layers"])
            shares = [float(s) for s in json.loads(meta["shares"])]
            iterations = [int(k) for k in json.loads(meta["iterations"])]
            frames = {(layer, share): tensors[f"frames.{layer}.{i}"]
                      for layer in layers for i, share in enumerate(shares)}
            original = _to_float(tensors["original"])
        except (KeyError, json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"{path}: incomplete frame cache (missing {exc})") from None
        for key, stack in frames.items():
            if stack.dtype != torch.uint8 or stack.dim() != 4 or stack.shape[0] != len(iterations):
                raise ValueError(f"{path}: frames for {key} have shape {tuple(stack.shape)}, "
                                 f"expected ({len(iterations)}, 3, H, W) uint8")
        return cls(original, layers, shares, iterations, frames, json.loads(meta.get("settings", "{}")), path)



# ----------------------------------------------------------------------------- computing frames

def panel_optimizer(style_share: float, optimizer: str = "auto", layer: str = "relu1_2") -> str:
    """The optimiser of one panel run: ``"auto"`` is L-BFGS, except Adam when a Gram term is in the
    objective at a first-block layer (L-BFGS stalls there from the faint-grey start: see
    :func:`perceptual_utils.optimization.texture.synthesize_style`; at deeper layers L-BFGS gives smoother pictures)."""
    if optimizer != "auto":
        return optimizer
    return "lbfgs" if style_share == 0.0 else style_optimizer([layer])


def reconstruct(image: torch.Tensor, layer: str, style_share: float, *, iterations: int,
                frames_at: Sequence[int], seed: int = 0, optimizer: str = "auto",
                progress: bool = False):
    """One run of the panel's objective (see the module docstring); returns the
    :class:`~perceptual_utils.optimization.runner.OptimizationResult`. ``optimizer``: see :func:`panel_optimizer`."""
    if not 0.0 <= style_share <= 1.0:
        raise ValueError(f"style_share must be in [0, 1], got {style_share}")
    optimizer = panel_optimizer(style_share, optimizer, layer)
    net = get_loss_network([layer])
    device = next(net.buffers()).device
    x0 = noise_image(tuple(image.shape[-2:]), seed)
    # The losses of the noise start, to put both terms on the same scale (each starts at 1).
    probe = PerceptualLoss(content_weight=1.0, style_weight=1.0, tv_weight=0.0, content_layer=layer,
                           style_layers=[layer], loss_network=net)
    probe.set_style(image.to(device))
    probe.set_content(image.to(device).unsqueeze(0))
    with torch.no_grad():
        start = probe(x0.to(device).unsqueeze(0))
    c0, s0 = float(start["content"]), float(start["style"])
    return gatys_style_transfer(
        image, image, content_layer=layer, style_layers=[layer],
        content_weight=(1.0 - style_share) / max(c0, 1e-12), style_weight=style_share / max(s0, 1e-12),
        tv_weight=0.0, init=x0, iterations=iterations, optimizer=optimizer, seed=seed,
        lr=STYLE_ADAM_LR if optimizer == "adam" else None, frames_at=frames_at, progress=progress, loss_network=net)


def frame_iterations(iterations: int, n_frames: int) -> list[int]:
    """About ``n_frames`` iterations from 0 to ``iterations``, denser at the start (where the
    image changes most): spaced evenly in ``sqrt(k)``."""
    if iterations < 1 or n_frames < 2:
        raise ValueError("need iterations >= 1 and n_frames >= 2")
    ks = {round(iterations * (i / (n_frames - 1)) ** 2) for i in range(n_frames)}
    return sorted(ks)


def reconstruction_frames(
    image: torch.Tensor,
    *,
    layers: Sequence[str] = STYLE_LAYERS,
    style_shares: Sequence[float] = DEFAULT_SHARES,
    iterations: int = 100,
    n_frames: int = 8,
    optimizer: str = "auto",
    seed: int = 0,
    cache_dir: str | os.PathLike | None = DEFAULT_CACHE_DIR,
    progress: bool = True,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> FrameSet:
    """Compute (or load from the cache) every frame the panel can show.

    ``len(layers) * len(style_shares)`` optimisation runs of ``iterations`` updates each, frames
    kept at :func:`frame_iterations`. ``cache_dir=None`` disables the cache. ``on_progress(done, total,
    what)`` is called before each run and at the end (the panel's status line uses it).
    """
    layers = check_layers(layers)
    shares = [float(s) for s in style_shares]
    if not shares or any(not 0.0 <= s <= 1.0 for s in shares):
        raise ValueError(f"style_shares must be values in [0, 1], got {list(style_shares)}")
    image = image.detach().float().cpu()
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be (3, H, W), got {tuple(image.shape)}")
    ks = frame_iterations(iterations, n_frames)
    settings = dict(layers=layers, shares=shares, iterations=iterations, frames=ks, optimizer=optimizer,
                    seed=seed, objective="normalised (1-a) l_feat + a l_style, from noise")
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{cache_key(image, settings)}.safetensors"
        if path.is_file():
            try:
                return FrameSet.load(path)
            except ValueError as exc:
                warnings.warn(f"{exc}; recomputing", stacklevel=2)
    frames: dict[tuple[str, float], torch.Tensor] = {}
    runs = [(layer, share) for layer in layers for share in shares]
    for i, (layer, share) in enumerate(tqdm(runs, desc="precomputing frames", disable=not progress)):
        if on_progress is not None:
            on_progress(i, len(runs), f"{layer}, style share {share:.2f}")
        result = reconstruct(image, layer, share, iterations=iterations, frames_at=ks, seed=seed,
                             optimizer=optimizer)
        frames[(layer, share)] = torch.stack([_to_uint8(result.frames[k]) for k in ks])
    if on_progress is not None:
        on_progress(len(runs), len(runs), "done")
    frame_set = FrameSet(image, layers, shares, ks, frames, settings)
    if path is not None:
        frame_set.save(path)
    return frame_set
