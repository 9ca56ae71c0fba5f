"""Optimisation-based image synthesis: what a perceptual loss *sees*.

Three tasks share one optimisation loop (:func:`_run_optimization`); each only differs in the
objective, a :class:`~perceptual_utils.losses.PerceptualLoss` configured for the task:

* :func:`invert_features`: feature reconstruction (Mahendran & Vedaldi; the paper's Fig. 3),
  ``min_x ||phi_j(x) - phi_j(y)||^2 / (C_j H_j W_j)`` from noise.
* :func:`synthesize_style`: style (texture) reconstruction from Gram matrices only,
  ``min_x sum_j ||G_j(x) - G_j(y_s)||_F^2`` from noise (Adam for first-block layers, where L-BFGS stalls).
* :func:`gatys_style_transfer`: Gatys et al., with *the same* objective the feed-forward network
  is trained on (content ``relu2_2``, style ``relu1_2/2_2/3_3/4_3``, total variation), so the two
  methods can be compared on equal terms.

Parameterisation. The optimised variable is the image itself, and after every update it is
projected back onto [0, 1] with ``clamp`` (projected gradient descent), so every image the loss
is evaluated on, every recorded loss and the returned image all lie in [0, 1] and agree with each
other. The alternative, an unconstrained ``z`` with ``x = sigmoid(z)``, needs no projection but
badly conditions the problem: inverting relu1_2 of a 64 px photo from noise reached 24.9 dB PSNR
after 300 L-BFGS iterations through the sigmoid, against 38.5 dB on clamped pixels. The projection
does change the point behind L-BFGS's back (its curvature pairs then describe a slightly
different step). Usually harmless, but in deep inversions it can make L-BFGS blow up: inverting
``relu4_3`` of a 128 px photo, the loss fell from 12 to 1.7 and then jumped to 11 and stayed there
(saturated pixels, no gradient). So when the loss exceeds :data:`RESTART_FACTOR` times the best so
far, the loop drops the step, restores the best image and clears L-BFGS's memory (a restart); the
spike stays in the history, and the run then fell to 0.27.

Iterations. One iteration is one update of ``z``; L-BFGS runs without line search (fixed step,
as in Gatys's and Johnson's Torch code), so it costs exactly one forward/backward pass, the same
as an Adam step: times per iteration are comparable between optimisers. ``history[k]`` holds the
losses of the image after ``k`` updates (``k = 0`` is the initial image), so a run of ``n``
iterations has ``n + 1`` entries, and ``frames[k]`` is that image.
"""
from __future__ import annotations

import argparse
import functools
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from .color import preserve_color as _preserve_color
from .color import rgb_to_ycbcr
from .config import default_device
from .images import load_image, resize_long_side, resize_short_side, save_image
from .loss_network import (CONTENT_LAYER, STYLE_LAYERS, VGG16_RELU_INDEX, VGG16_STRIDE, LossNetwork, check_layers,
                           min_input_size)
from .losses import PerceptualLoss

OPTIMIZERS = ("lbfgs", "adam")
#: L-BFGS restarts from the best image so far when the loss exceeds this multiple of the best.
RESTART_FACTOR = 2.0
#: Bumped whenever a change makes the same call give other images (part of the widgets' cache key).
ALGORITHM_VERSION = 4  # 2: faint-noise start, L-BFGS restarts; 4: Adam for first-block Gram objectives
INITS = ("noise", "content")
#: Default Adam learning rate (pixels in [0, 1]).
ADAM_LR = 0.02
#: Adam learning rate of style synthesis (:func:`synthesize_style`, which defaults to Adam).
STYLE_ADAM_LR = 0.05

#: ``callback(iteration, image, losses)``: called after each evaluation with the image after
#: ``iteration`` updates (detached, ``(3, H, W)``) and its loss terms; return ``True`` to stop.
Callback = Callable[[int, torch.Tensor, dict[str, float]], "bool | None"]


@dataclass
class OptimizationResult:
    """What an optimisation run returns.

    Attributes:
        image: the final image, ``(3, H, W)`` in [0, 1], on the CPU.
        history: loss term -> values per iteration (``"total"`` and the weighted terms, e.g.
            ``"content"``, ``"style"``, ``"tv"``); entry ``k`` is the image after ``k`` updates.
        frames: iteration -> image ``(3, H, W)`` (CPU) for the iterations asked for in ``frames_at``.
        iterations: updates actually made (fewer than asked when a callback stopped the run).
        setup_seconds: time to build the targets (loss network passes over content/style images).
        optimize_seconds: time spent in the optimisation loop.
        settings: the arguments of the run (for logging and cache keys).
    """

    image: torch.Tensor
    history: dict[str, list[float]]
    frames: dict[int, torch.Tensor] = field(default_factory=dict)
    iterations: int = 0
    setup_seconds: float = 0.0
    optimize_seconds: float = 0.0
    settings: dict = field(default_factory=dict)

    @property
    def seconds_per_iteration(self) -> float:
        """Mean wall-clock seconds per update (one forward + backward pass of the loss network)."""
        return self.optimize_seconds / max(1, self.iterations)

    @property
    def final_losses(self) -> dict[str, float]:
        """The loss terms of :attr:`image`."""
        return {k: v[-1] for k, v in self.history.items()}


# ----------------------------------------------------------------------------- helpers

@functools.lru_cache(maxsize=8)
def _cached_network(layers: tuple[str, ...], weights: str | None) -> LossNetwork:
    return LossNetwork(list(layers), weights=weights)


def get_loss_network(layers: Iterable[str], weights: str | os.PathLike | None = None,
                     device: torch.device | str | None = None) -> LossNetwork:
    """A frozen VGG-16 tapping ``layers``, cached per layer set so repeated runs (a grid of
    inversions, a widget) load the weights from disk only once."""
    layers = tuple(check_layers(layers))
    net = _cached_network(layers, None if weights is None else str(weights))
    return net.to(device or default_device())


def _network_for(layers: Sequence[str], loss_network: LossNetwork | None, weights, device) -> LossNetwork:
    if loss_network is None:
        return get_loss_network(layers, weights, device)
    missing = [name for name in layers if name not in loss_network.layers]
    if missing:
        raise ValueError(f"the loss network given does not tap layers {missing}; it taps {loss_network.layers}")
    return loss_network


def _as_image(image: torch.Tensor, what: str) -> torch.Tensor:
    """Check an image tensor and return it as ``(3, H, W)`` float."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{what} must be a tensor (3, H, W) in [0, 1]; load files with load_image()")
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"{what} must be an RGB image shaped (3, H, W), got {tuple(image.shape)}")
    return image.detach().float()


def _check_size(image: torch.Tensor, layers: Sequence[str], what: str) -> None:
    need = min_input_size(layers)
    h, w = image.shape[-2:]
    if min(h, w) < need:
        deepest = max(layers, key=VGG16_RELU_INDEX.get)
        raise ValueError(f"{what} of {h}x{w} px is too small for layer {deepest}: it needs at least "
                         f"{need} px per side (the feature map shrinks {need}x); use a larger image")


#: Standard deviation of the noise initialisation around mid-grey.
NOISE_STD = 0.01


def noise_image(size: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """The seeded noise initialisation: mid-grey plus faint Gaussian noise, ``0.5 + 0.01 N(0, 1)``
    per pixel, ``(3, H, W)`` in [0, 1].

    Faint, as in Johnson's Torch ``neural-style`` (``randn * 0.001``): the noise only breaks the
    symmetry. From it, inverting ``relu4_3`` of a 128 px photo with 150 L-BFGS iterations reached
    feature loss 0.079 (chicago) and 0.27 (astronaut), against 0.18 and 0.37 from the high-contrast
    ``sigmoid(N(0, 1))`` start we used before.
    """
    generator = torch.Generator().manual_seed(int(seed))
    return (0.5 + NOISE_STD * torch.randn((3, *size), generator=generator)).clamp(0, 1)


def _frame_set(frames_at: Iterable[int] | None, iterations: int) -> set[int]:
    if frames_at is None:
        return set()
    wanted = {int(k) for k in frames_at}
    bad = [k for k in wanted if k < 0 or k > iterations]
    if bad:
        raise ValueError(f"frames_at: iterations {sorted(bad)} are outside 0..{iterations}")
    return wanted


# ----------------------------------------------------------------------------- the shared loop

def _run_optimization(
    objective: PerceptualLoss,
    init: torch.Tensor,
    *,
    iterations: int,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    frames_at: Iterable[int] | None = None,
    callback: Callback | None = None,
    progress: bool = True,
    desc: str = "optimising",
) -> tuple[torch.Tensor, dict[str, list[float]], dict[int, torch.Tensor], int, float]:
    """Minimise ``objective(x)["total"]`` over images ``x`` in [0, 1] starting from ``init``.

    Returns ``(image, history, frames, iterations_done, seconds)``.
    """
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    optimizer = optimizer.lower()
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    wanted = _frame_set(frames_at, iterations)
    device = next(objective.loss_network.buffers()).device
    z = init.to(device).float().clamp(0, 1).unsqueeze(0).clone().requires_grad_(True)
    if optimizer == "lbfgs":
        # max_iter=1: one update per step() call, so we see every iteration; the curvature memory
        # lives in the optimiser state and carries over between calls. No line search: exactly one
        # function evaluation per iteration. Zero tolerances: never stop silently before `iterations`.
        opt: torch.optim.Optimizer = torch.optim.LBFGS(
            [z], lr=lr or 1.0, max_iter=1, history_size=100, tolerance_grad=0.0, tolerance_change=0.0)
    else:
        opt = torch.optim.Adam([z], lr=lr or ADAM_LR)

    history: dict[str, list[float]] = {}
    frames: dict[int, torch.Tensor] = {}
    state = {"k": 0, "stop": False}
    best = {"loss": math.inf, "image": z.detach().clone()}

    def record(terms: Mapping[str, torch.Tensor], image: torch.Tensor) -> None:
        k = state["k"]
        values = {name: float(v.detach()) for name, v in terms.items()}
        if not math.isfinite(values["total"]):
            raise ValueError(
                f"the loss became {values['total']} at iteration {k}; lower the loss weights or use optimizer='adam'")
        for name, v in values.items():
            history.setdefault(name, []).append(v)
        if k in wanted:
            frames[k] = image.detach()[0].cpu().clone()
        if callback is not None and callback(k, image.detach()[0], values):
            state["stop"] = True

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        terms = objective(z)
        terms["total"].backward()
        record(terms, z)
        if history["total"][-1] < best["loss"]:
            best["loss"], best["image"] = history["total"][-1], z.detach().clone()
        return terms["total"]

    start = time.perf_counter()
    with tqdm(total=iterations, desc=desc, disable=not progress, leave=False) as bar:
        while state["k"] < iterations and not state["stop"]:
            opt.step(closure)  # evaluates at the current image (recorded as iteration k), then updates
            with torch.no_grad():
                if optimizer == "lbfgs" and history["total"][-1] > RESTART_FACTOR * best["loss"]:
                    # L-BFGS blew up (see the module docstring): drop this step and the curvature
                    # memory that produced it, and continue from the best image so far.
                    z.copy_(best["image"])
                    opt.state.clear()
                z.clamp_(0, 1)  # project back onto valid images (see the module docstring)
            state["k"] += 1
            bar.update(1)
            bar.set_postfix(loss=f"{history['total'][-1]:.4g}", refresh=False)
        # The losses (and frame) of the final image: history gets iterations_done + 1 entries.
        with torch.no_grad():
            record(objective(z), z)
    seconds = time.perf_counter() - start
    final = z.detach()[0].cpu().clone()
    done = state["k"]
    for k in wanted:  # a run stopped early: later frames are the final image
        frames.setdefault(k, final)
    return final, history, dict(sorted(frames.items())), done, seconds


# ----------------------------------------------------------------------------- the three tasks

def invert_features(
    image: torch.Tensor,
    layer: str,
    *,
    iterations: int = 200,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    tv_weight: float = 0.0,
    init: str | torch.Tensor = "noise",
    seed: int = 0,
    frames_at: Iterable[int] | None = None,
    callback: Callback | None = None,
    progress: bool = True,
    loss_network: LossNetwork | None = None,
    weights: str | os.PathLike | None = None,
) -> OptimizationResult:
    """Reconstruct an image from its VGG-16 features at ``layer`` (the paper's Fig. 3).

    Minimises ``l_feat = ||phi_j(x) - phi_j(y)||^2 / (C_j H_j W_j)`` (+ ``tv_weight * l_TV``) over
    the image ``x``, starting from seeded noise.

    Args:
        image: the target ``y``, ``(3, H, W)`` in [0, 1].
        layer: a ReLU layer name, e.g. ``"relu2_2"``.
        iterations: number of updates; optimizer ``"lbfgs"`` (default) or ``"adam"`` (``lr``).
        tv_weight: weight of the total-variation regulariser (0: none).
        init: ``"noise"`` (seeded), ``"content"`` (the target itself, a sanity check) or a tensor.
        frames_at: iterations at which to keep a copy of the image (e.g. for an animation).
        callback: see :data:`Callback`; progress: show a tqdm bar.
        loss_network: a :class:`LossNetwork` tapping ``layer`` (default: a cached one).

    Raises:
        ValueError: unknown layer/optimiser, or an image too small for ``layer``.
    """
    layer = check_layers([layer])[0]
    image = _as_image(image, "image")
    _check_size(image, [layer], "image")
    net = _network_for([layer], loss_network, weights, None)
    objective = PerceptualLoss(content_weight=1.0, style_weight=0.0, tv_weight=tv_weight,
                               content_layer=layer, style_layers=[], loss_network=net)
    device = next(net.buffers()).device
    start = time.perf_counter()
    objective.set_content(image.to(device).unsqueeze(0))
    setup = time.perf_counter() - start
    x0 = _initial_image(init, image, image.shape[-2:], seed)
    final, history, frames, done, secs = _run_optimization(
        objective, x0, iterations=iterations, optimizer=optimizer, lr=lr, frames_at=frames_at,
        callback=callback, progress=progress, desc=f"invert {layer}")
    settings = dict(task="invert", layer=layer, iterations=iterations, optimizer=optimizer, lr=lr,
                    tv_weight=tv_weight, init=init if isinstance(init, str) else "tensor", seed=seed)
    return OptimizationResult(final, history, frames, done, setup, secs, settings)


def synthesize_style(
    style_image: torch.Tensor,
    layers: Sequence[str] | str = STYLE_LAYERS,
    *,
    size: int | tuple[int, int] | None = None,
    iterations: int = 200,
    optimizer: str = "auto",
    lr: float | None = None,
    tv_weight: float = 0.0,
    seed: int = 0,
    frames_at: Iterable[int] | None = None,
    callback: Callback | None = None,
    progress: bool = True,
    loss_network: LossNetwork | None = None,
    weights: str | os.PathLike | None = None,
) -> OptimizationResult:
    """Synthesise a texture from the Gram matrices of ``style_image`` at ``layers`` (style
    reconstruction, the paper's Fig. 5 / Gatys et al.'s texture synthesis), from seeded noise.

    Minimises ``sum_j ||G_j(x) - G_j(y_s)||_F^2`` (+ ``tv_weight * l_TV``). Gram matrices discard
    *where* features occur, so the result keeps colours and textures but not the layout.

    Optimiser. ``"auto"`` (default, :func:`style_optimizer`) is Adam (``lr`` :data:`STYLE_ADAM_LR`)
    when only first-block layers (``relu1_1``, ``relu1_2``) are matched, L-BFGS otherwise. From the
    faint-grey start L-BFGS stalls on the shallowest Gram matrices: matching ``relu1_2`` of Starry
    Night at 128 px, 150 L-BFGS iterations moved the loss only from 1.45 to 1.11 and left a flat grey
    picture, where Adam reaches 9e-4 with the painting's colours. (A stronger start, uniform noise,
    also gets L-BFGS going, 2e-4, but leaves pixel noise in the deep-layer syntheses, which nothing in
    a deep Gram matrix removes.) From ``relu2_2`` on L-BFGS works and reaches about half Adam's loss
    (relu3_3: 0.093 against 0.18) with smoother pictures, so it stays the choice there.

    Args:
        style_image: ``(3, H, W)`` in [0, 1].
        layers: one layer name or several (e.g. the cumulative sets ``STYLE_LAYERS[:k]``).
        size: output size, an int (square) or ``(H, W)``; default: the style image's size.
        optimizer, lr: ``"auto"`` (default), ``"adam"`` (``lr`` default :data:`STYLE_ADAM_LR`) or ``"lbfgs"``.
        The other arguments are as in :func:`invert_features`.
    """
    layers = check_layers(layers)
    optimizer = style_optimizer(layers) if optimizer == "auto" else optimizer
    style_image = _as_image(style_image, "style_image")
    _check_size(style_image, layers, "style image")
    out_size = tuple(style_image.shape[-2:]) if size is None else ((size, size) if isinstance(size, int) else tuple(size))
    _check_size(torch.empty(0, *out_size), layers, "output size")
    net = _network_for(layers, loss_network, weights, None)
    objective = PerceptualLoss(content_weight=0.0, style_weight=1.0, tv_weight=tv_weight,
                               content_layer=None, style_layers=layers, loss_network=net)
    start = time.perf_counter()
    objective.set_style(style_image)
    setup = time.perf_counter() - start
    final, history, frames, done, secs = _run_optimization(
        objective, noise_image(out_size, seed), iterations=iterations, optimizer=optimizer,
        lr=lr if lr is not None or optimizer.lower() != "adam" else STYLE_ADAM_LR,
        frames_at=frames_at, callback=callback, progress=progress, desc=f"style {'+'.join(layers)}")
    settings = dict(task="style", layers=list(layers), size=list(out_size), iterations=iterations,
                    optimizer=optimizer, lr=lr, tv_weight=tv_weight, seed=seed)
    return OptimizationResult(final, history, frames, done, setup, secs, settings)


def style_optimizer(layers: Sequence[str] | str) -> str:
    """The optimiser ``"auto"`` picks for a Gram-matrix objective on ``layers``: ``"adam"`` when all of them
    are in VGG-16's first block (where L-BFGS stalls from the faint-grey start), else ``"lbfgs"``."""
    return "adam" if all(VGG16_STRIDE[name] == 1 for name in check_layers(layers)) else "lbfgs"


def _initial_image(init: str | torch.Tensor, content: torch.Tensor, size, seed: int) -> torch.Tensor:
    if isinstance(init, torch.Tensor):
        init = _as_image(init, "init")
        if init.shape[-2:] != tuple(size):
            raise ValueError(f"init image is {tuple(init.shape[-2:])}, expected {tuple(size)}")
        return init
    if init == "noise":
        return noise_image(tuple(size), seed)
    if init == "content":
        return content
    raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)} or pass an image tensor")


def _luminance_rgb(image: torch.Tensor, match_to: torch.Tensor | None = None) -> torch.Tensor:
    """The BT.601 luminance as a grey RGB image; with ``match_to``, its mean/std are matched to
    ``match_to``'s luminance (Gatys et al. 2016, "Preserving colour": luminance-only transfer)."""
    y = rgb_to_ycbcr(image)[:1]
    if match_to is not None:
        ref = rgb_to_ycbcr(match_to)[:1]
        y = (y - y.mean()) / (y.std() + 1e-8) * ref.std() + ref.mean()
    return y.clamp(0, 1).expand(3, -1, -1).contiguous()


def gatys_style_transfer(
    content: torch.Tensor,
    style: torch.Tensor | Sequence[torch.Tensor],
    *,
    style_blend_weights: Sequence[float] | None = None,
    content_weight: float | None = None,
    style_weight: float | None = None,
    tv_weight: float | None = None,
    size: int | None = None,
    style_size: int | None = None,
    init: str | torch.Tensor = "content",
    iterations: int = 300,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    preserve_color: bool = False,
    seed: int = 0,
    content_layer: str = CONTENT_LAYER,
    style_layers: Sequence[str] = STYLE_LAYERS,
    frames_at: Iterable[int] | None = None,
    callback: Callback | None = None,
    progress: bool = True,
    loss_network: LossNetwork | None = None,
    weights: str | os.PathLike | None = None,
) -> OptimizationResult:
    """Gatys et al. (2016) style transfer with the feed-forward network's objective.

    Minimises :class:`~perceptual_utils.losses.PerceptualLoss` over the image:
    ``content_weight * l_feat[relu2_2] + style_weight * sum_j l_style[j] + tv_weight * l_TV``.

    Args:
        content: ``(3, H, W)`` in [0, 1].
        style: one style image or several; several are blended on their Gram matrices with
            ``style_blend_weights`` (normalised to sum to 1; default equal).
        content_weight, style_weight, tv_weight: ``None`` uses PerceptualLoss's calibrated defaults.
        size: resize the content so its short side is ``size`` (default: keep its size).
        style_size: resize each style image so its long side is ``style_size`` (default: the
            content's long side, as in Gatys's and Johnson's code; the texture scale follows it).
        init: ``"content"`` (default, converges fastest), ``"noise"`` (seeded) or a tensor.
        iterations, optimizer, lr: the optimisation (L-BFGS default; ``"adam"`` with ``lr``).
        preserve_color: luminance-only transfer: optimise on the luminance of content and style
            (style luminance matched to the content's mean/std), then put the result's luminance
            under the content's colours (Cb/Cr). ``history`` then refers to the luminance problem.
        content_layer, style_layers: default the paper's (and the feed-forward training's).
        frames_at, callback, progress, loss_network, weights: as in :func:`invert_features`.

    Returns:
        An :class:`OptimizationResult` (``image`` at the content's (resized) size).
    """
    content = _as_image(content, "content")
    styles = [style] if isinstance(style, torch.Tensor) and style.dim() == 3 else list(style)
    if not styles:
        raise ValueError("gatys_style_transfer needs at least one style image")
    styles = [_as_image(s, f"style image {i}") for i, s in enumerate(styles)]
    if size is not None:
        content = resize_short_side(content, int(size))
    style_layers = check_layers(style_layers)
    content_layer = check_layers([content_layer])[0]
    needed = list(dict.fromkeys([content_layer, *style_layers]))
    _check_size(content, needed, "content image")
    long_side = int(style_size or max(content.shape[-2:]))
    styles = [resize_long_side(s, long_side) for s in styles]
    for i, s in enumerate(styles):
        _check_size(s, style_layers, f"style image {i} (resized to long side {long_side})")
    if preserve_color:
        original = content
        content = _luminance_rgb(content)
        styles = [_luminance_rgb(s, match_to=original) for s in styles]

    net = _network_for(needed, loss_network, weights, None)
    w = {k: v for k, v in (("content_weight", content_weight), ("style_weight", style_weight),
                           ("tv_weight", tv_weight)) if v is not None}
    objective = PerceptualLoss(content_layer=content_layer, style_layers=style_layers, loss_network=net, **w)
    device = next(net.buffers()).device
    start = time.perf_counter()
    objective.set_style([s.to(device) for s in styles], style_blend_weights)
    objective.set_content(content.to(device).unsqueeze(0))
    setup = time.perf_counter() - start
    x0 = _initial_image(init, content, content.shape[-2:], seed)
    final, history, frames, done, secs = _run_optimization(
        objective, x0, iterations=iterations, optimizer=optimizer, lr=lr, frames_at=frames_at,
        callback=callback, progress=progress, desc="gatys")
    if preserve_color:
        final = _preserve_color(final, original)
        frames = {k: _preserve_color(v, original) for k, v in frames.items()}
    settings = dict(task="gatys", content_weight=objective.content_weight, style_weight=objective.style_weight,
                    tv_weight=objective.tv_weight, size=list(content.shape[-2:]), style_size=long_side,
                    n_styles=len(styles), style_blend_weights=list(style_blend_weights or []),
                    init=init if isinstance(init, str) else "tensor", iterations=iterations,
                    optimizer=optimizer, lr=lr, preserve_color=preserve_color, seed=seed,
                    content_layer=content_layer, style_layers=list(style_layers))
    return OptimizationResult(final, history, frames, done, setup, secs, settings)


# ----------------------------------------------------------------------------- command line

def _run_gatys_cli(args: argparse.Namespace) -> int:
    from .cli import CLIError

    from .validation import check_finite, check_output_image, check_pixels, check_same_file

    if args.iterations < 1:
        raise CLIError(f"--iterations must be at least 1, got {args.iterations}")
    if args.size is not None and args.size < 1:
        raise CLIError(f"--size must be positive, got {args.size}")
    for option in ("content_weight", "style_weight", "tv_weight"):
        check_finite("--" + option.replace("_", "-"), getattr(args, option), minimum=0, optional=True)
    weights = args.style_blend_weights
    if weights is not None and len(weights) != len(args.style):
        raise CLIError(f"--style-blend-weights needs one weight per style image "
                       f"({len(args.style)} styles, {len(weights)} weights)")
    for w in weights or ():
        check_finite("--style-blend-weights", w, minimum=0)
    check_output_image(args.output)
    for source in [args.content, *args.style]:
        check_same_file(source, args.output)
    content = load_image(args.content)
    styles = [load_image(p) for p in args.style]
    # The working sizes, before any allocation: content (resized to --size) and each style
    # resized so its long side equals the content's long side.
    h, w = content.shape[-2:]
    if args.size is not None:
        h, w = max(1, round(h * args.size / min(h, w))), max(1, round(w * args.size / min(h, w)))
    check_pixels("content image", h, w, hint="; use --size to shrink it")
    for path, style in zip(args.style, styles):
        sh, sw = style.shape[-2:]
        f = max(h, w) / max(sh, sw)
        check_pixels(f"style image {path} (resized to the content's long side)", round(sh * f), round(sw * f),
                     hint="; use a smaller or less elongated content image, or --size")
    result = gatys_style_transfer(
        content, styles, style_blend_weights=weights, content_weight=args.content_weight,
        style_weight=args.style_weight, tv_weight=args.tv_weight, size=args.size, init=args.init,
        iterations=args.iterations, optimizer=args.optimizer, preserve_color=args.preserve_color,
        seed=args.seed, progress=not args.no_progress, weights=args.weights)
    out = save_image(result.image, args.output)
    terms = ", ".join(f"{k} {v:.4g}" for k, v in result.final_losses.items())
    print(f"wrote {out} ({result.iterations} iterations, {result.seconds_per_iteration:.3f} s/iteration; {terms})")
    return 0


def _run_invert_cli(args: argparse.Namespace) -> int:
    from .cli import CLIError

    from .validation import check_finite, check_int, check_output_image, check_pixels, check_same_file

    if args.iterations < 1:
        raise CLIError(f"--iterations must be at least 1, got {args.iterations}")
    check_int("--size", args.size, minimum=1, optional=True)
    check_finite("--tv-weight", args.tv_weight, minimum=0)
    check_output_image(args.output)
    check_same_file(args.input, args.output)
    image = load_image(args.input, size=args.size) if args.size else load_image(args.input)
    check_pixels("image", *image.shape[-2:], hint="; use --size to shrink it")
    result = invert_features(image, args.layer, iterations=args.iterations, optimizer=args.optimizer,
                             tv_weight=args.tv_weight, seed=args.seed, progress=not args.no_progress,
                             weights=args.weights)
    out = save_image(result.image, args.output)
    print(f"wrote {out} (layer {args.layer}, {result.iterations} iterations, "
          f"feature loss {result.final_losses['content']:.4g})")
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``gatys`` and ``invert`` to the command line."""
    p = subparsers.add_parser(
        "gatys", help="optimisation-based style transfer (Gatys et al.) with the perceptual loss",
        description="Optimise an image to match the content of one image and the style of others, "
                    "with the same loss the feed-forward network is trained on.")
    p.add_argument("--content", required=True, help="content image file")
    p.add_argument("--style", required=True, nargs="+", help="one or more style image files")
    p.add_argument("--style-blend-weights", type=float, nargs="+", help="one weight per style (default: equal)")
    p.add_argument("--output", required=True, help="output image file (.png, .jpg)")
    p.add_argument("--size", type=int, help="content short side in px (default: keep the file's size)")
    p.add_argument("--iterations", type=int, default=300, help="updates (default: %(default)s)")
    p.add_argument("--content-weight", type=float, help="default: calibrated PerceptualLoss default")
    p.add_argument("--style-weight", type=float, help="default: calibrated PerceptualLoss default")
    p.add_argument("--tv-weight", type=float, help="default: calibrated PerceptualLoss default")
    p.add_argument("--init", choices=INITS, default="content", help="initial image (default: %(default)s)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="lbfgs", help="default: %(default)s")
    p.add_argument("--preserve-color", action="store_true", help="luminance-only transfer (keep the content's colours)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise initialisation (default: %(default)s)")
    p.add_argument("--weights", help="VGG-16 weights file (default: $PERCEPTUAL_UTILS_WEIGHTS / download)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_gatys_cli)

    q = subparsers.add_parser(
        "invert", help="reconstruct an image from its VGG-16 features at one layer (the paper's Fig. 3)",
        description="Optimise a noise image until its VGG-16 features at --layer match the input's.")
    q.add_argument("--input", required=True, help="image file")
    q.add_argument("--layer", required=True, help="ReLU layer, e.g. relu2_2 (relu1_1 ... relu5_3)")
    q.add_argument("--output", required=True, help="output image file")
    q.add_argument("--size", type=int, help="resize the input's short side to this many px first")
    q.add_argument("--iterations", type=int, default=200, help="updates (default: %(default)s)")
    q.add_argument("--optimizer", choices=OPTIMIZERS, default="lbfgs", help="default: %(default)s")
    q.add_argument("--tv-weight", type=float, default=0.0, help="total-variation weight (default: %(default)s)")
    q.add_argument("--seed", type=int, default=0, help="seed of the noise initialisation (default: %(default)s)")
    q.add_argument("--weights", help="VGG-16 weights file (default: $PERCEPTUAL_UTILS_WEIGHTS / download)")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(func=_run_invert_cli)
