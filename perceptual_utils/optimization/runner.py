"""Optimisation-based image synthesis: what a perceptual loss *sees*.

Three tasks share one task runner (:func:`run_task`: targets timed, one optimisation loop, one
:class:`OptimizationResult`); each only differs in the objective, a
:class:`~perceptual_utils.losses.PerceptualLoss` configured for the task:

* :func:`~.inversion.invert_features`: feature reconstruction (Mahendran & Vedaldi; the paper's Fig. 3),
  ``min_x ||phi_j(x) - phi_j(y)||^2 / (C_j H_j W_j)`` from noise.
* :func:`~.texture.synthesize_style`: style (texture) reconstruction from Gram matrices only,
  ``min_x sum_j ||G_j(x) - G_j(y_s)||_F^2`` from noise (Adam for first-block layers, where L-BFGS stalls).
* :func:`~.gatys.gatys_style_transfer`: Gatys et al., with *the same* objective the feed-forward network
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
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from ..losses import PerceptualLoss
from ..vgg.cache import get_loss_network
from ..vgg.network import VGG16_RELU_INDEX, LossNetwork, min_input_size, require_layers

OPTIMIZERS = ("lbfgs", "adam")
#: L-BFGS restarts from the best image so far when the loss exceeds this multiple of the best.
RESTART_FACTOR = 2.0
#: Bumped whenever a change makes the same call give other images (part of the teaching panel's frame-cache key).
ALGORITHM_VERSION = 4  # 2: faint-noise start, L-BFGS restarts; 4: Adam for first-block Gram objectives
INITS = ("noise", "content")
#: Default Adam learning rate (pixels in [0, 1]).
ADAM_LR = 0.02
#: Adam learning rate of style synthesis (:func:`~.texture.synthesize_style`, which defaults to Adam).
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

def loss_network_for(layers: Sequence[str], loss_network: LossNetwork | None,
                     weights: str | os.PathLike | None = None) -> LossNetwork:
    """``loss_network`` if given (it must tap ``layers``), else the cached one (:func:`get_loss_network`)."""
    if loss_network is None:
        return get_loss_network(layers, weights)
    require_layers(loss_network, layers, "the loss network given")
    return loss_network


def as_image(image: torch.Tensor, what: str) -> torch.Tensor:
    """Check an image tensor and return it as ``(3, H, W)`` float."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{what} must be a tensor (3, H, W) in [0, 1]; load files with load_image()")
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"{what} must be an RGB image shaped (3, H, W), got {tuple(image.shape)}")
    return image.detach().float()


def check_size(image: torch.Tensor, layers: Sequence[str], what: str) -> None:
    """Refuse an image too small for the deepest of ``layers``, naming it and the size it needs."""
    need = min_input_size(layers)
    h, w = image.shape[-2:]
    if min(h, w) < need:
        deepest = max(layers, key=VGG16_RELU_INDEX.get)
        raise ValueError(f"{what} of {h}x{w} px is too small for layer {deepest}: it needs at least "
                         f"{need} px per side (the feature map shrinks {need}x); use a larger image")


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

def optimize_image(
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
) -> OptimizationResult:
    """Minimise ``objective(x)["total"]`` over images ``x`` in [0, 1] starting from ``init``
    (targets already set); the result's ``setup_seconds`` and ``settings`` are left empty."""
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
    return OptimizationResult(final, history, dict(sorted(frames.items())), done, optimize_seconds=seconds)


def run_task(objective: PerceptualLoss, init: torch.Tensor, *, targets: Callable[[torch.device], None],
             settings: dict, desc: str, iterations: int, optimizer: str = "lbfgs", lr: float | None = None,
             frames_at: Iterable[int] | None = None, callback: Callback | None = None,
             progress: bool = True) -> OptimizationResult:
    """The skeleton every task shares: ``targets(device)`` sets the objective's targets (timed as
    the setup), :func:`optimize_image` runs from ``init``, and the result carries ``settings``."""
    device = next(objective.loss_network.buffers()).device
    start = time.perf_counter()
    targets(device)
    setup = time.perf_counter() - start
    result = optimize_image(objective, init, iterations=iterations, optimizer=optimizer, lr=lr,
                            frames_at=frames_at, callback=callback, progress=progress, desc=desc)
    result.setup_seconds, result.settings = setup, settings
    return result




def initial_image(init: str | torch.Tensor, content: torch.Tensor, size, seed: int) -> torch.Tensor:
    """The start of an optimisation: a tensor as given (checked against ``size``), ``"noise"``
    (:func:`noise_image`, seeded) or ``"content"`` (the content image itself)."""
    if isinstance(init, torch.Tensor):
        init = as_image(init, "init")
        if init.shape[-2:] != tuple(size):
            raise ValueError(f"init image is {tuple(init.shape[-2:])}, expected {tuple(size)}")
        return init
    if init == "noise":
        return noise_image(tuple(size), seed)
    if init == "content":
        return content
    raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)} or pass an image tensor")


