"""Training super-resolution networks with a feature-reconstruction or a per-pixel loss.

The paper's recipe (Section 4.2): 288x288 HR patches (MS-COCO), LR inputs made by a Gaussian
blur (sigma = 1) and bicubic downsampling, batch size 4, 200k iterations, Adam with learning
rate 1e-3, and either the feature reconstruction loss at VGG-16 ``relu2_2`` ("perceptual") or
the per-pixel squared error (the baseline). The loop itself (progress, previews, atomic
checkpoints, exact resume, AMP, DDP, model file) is :func:`perceptual_utils.training.loop.train_loop`,
shared with the style-transfer networks.

``python -m perceptual_utils train-sr --scale 4 --loss feature --data DIR --steps 200000 --out runs/sr_x4``
"""
from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import seed_everything
from ..datafiles import default_training_data
from ..errors import CLIError
from ..images import ImageLoadError, center_crop, list_images, load_image, resize_short_side
from ..losses import check_grid_jitter, feature_reconstruction_loss, jittered_crop, pixel_loss
from ..training.cli import add_training_arguments, check_export, report_training
from ..training.loop import TrainResult, train_loop
from ..training.planning import plan_run
from ..training.settings import TrainSettings, sort_options
from ..training_data import ImageFolderDataset
from ..validation import check_training_args
from ..vgg.network import CONTENT_LAYER, VGG16_LAYERS, LossNetwork, check_layers, require_layers
from .degradation import bicubic_upsample, degrade, make_lr_hr_pair
from .net import SuperResolutionNet

LOSSES = ("feature", "pixel")


class SRLoss(nn.Module):
    """``loss_fn(model, (lr, hr))`` for the training loop: ``{"total", "feature" | "pixel"}`` (both
    terms with a ``pixel_weight``).

    ``"feature"``: ``l_feat`` at ``relu2_2`` between the output and the HR patch (the paper's
    perceptual loss); ``"pixel"``: mean squared error in RGB (the baseline). ``grid_jitter``: the
    feature loss compares both at a random offset below this many pixels
    (:func:`~perceptual_utils.losses.jittered_crop`; the pixel loss has no grid to lock onto).
    ``pixel_weight``: with the feature loss, also add this times the per-pixel loss (the returned
    dict then has both terms). Not in the paper: SRGAN (Ledig et al. 2017) mixes the two, because
    the ``relu2_2`` loss alone tolerates faint cross-hatching (visible in the paper's own x4
    results) that the per-pixel term penalises; 0 (the default) is the paper's feature loss.
    """

    def __init__(self, loss: str = "feature", layer: str = CONTENT_LAYER, loss_network: LossNetwork | None = None,
                 vgg_weights: str | os.PathLike | None = None, grid_jitter: int = 0, pixel_weight: float = 0.0):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose from {', '.join(LOSSES)}")
        self.loss, self.layer = loss, layer
        self.grid_jitter = check_grid_jitter(grid_jitter)
        self.pixel_weight = check_pixel_weight(pixel_weight, loss)
        if loss == "feature":
            self.loss_network = loss_network if loss_network is not None else LossNetwork([layer], weights=vgg_weights)
            require_layers(self.loss_network, [layer])
        else:
            self.loss_network = None

    def forward(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        lr, hr = batch
        sr = model(lr)
        if self.loss == "pixel":
            term = pixel_loss(sr, hr)
            return {"pixel": term, "total": term}
        terms = {"pixel": pixel_loss(sr, hr)} if self.pixel_weight else {}  # on the whole patch: no grid
        sr, hr = jittered_crop(sr, hr, self.grid_jitter)
        with torch.no_grad():
            target = self.loss_network(hr)[self.layer]
        terms["feature"] = feature_reconstruction_loss(self.loss_network(sr)[self.layer], target)
        terms["total"] = terms["feature"] + self.pixel_weight * terms["pixel"] if self.pixel_weight else terms["feature"]
        return terms


def check_pixel_weight(pixel_weight: float, loss: str = "feature") -> float:
    """``pixel_weight`` as a float, or a ``ValueError`` naming the problem (negative, not finite,
    or given with the per-pixel loss, which it would only rescale)."""
    try:
        weight = float(pixel_weight)
    except (TypeError, ValueError):
        raise ValueError(f"pixel weight must be a number, got {pixel_weight!r}") from None
    if not math.isfinite(weight) or weight < 0:
        raise ValueError(f"pixel weight must be a finite number >= 0, got {pixel_weight!r}")
    if weight and loss != "feature":
        raise ValueError("a pixel weight only applies to the feature loss (--loss feature)")
    return weight


def _first_readable(folder: Path) -> torch.Tensor:
    """The first training image that loads (previews must not fail on one bad file)."""
    for path in list_images(folder):
        try:
            return load_image(path)
        except ImageLoadError:
            continue
    raise ImageLoadError(f"{folder}: none of the image files could be read")


def make_preview_fn(image: torch.Tensor, scale: int, patch: int, sigma: float = 1.0):
    """``preview_fn(model)`` showing [bicubic | network | ground truth] of one fixed HR patch."""
    hr = center_crop(resize_short_side(image, patch) if min(image.shape[-2:]) < patch else image, patch)
    lr = degrade(hr, scale, sigma).unsqueeze(0)

    def preview(model: nn.Module) -> torch.Tensor:
        device = next(model.parameters()).device
        sr = model(lr.to(device)).float().cpu()
        return torch.cat([bicubic_upsample(lr, scale), sr, hr.unsqueeze(0)])

    return preview


#: ``paper``: Section 4.2's recipe (GPU). ``cpu``: what beats bicubic on a laptop CPU in minutes:
#: the ``modern`` network (no batch norm, nearest + conv, global residual over bicubic with a
#: zero-initialised last layer, so it *starts* at bicubic quality), small patches (24 px LR
#: inputs at x4, 16 px at x8: many more steps per minute), batch 8, Adam 5e-4 with a cosine
#: decay (no batch norm: a smaller step than the paper's 1e-3 keeps the residual stable), photos
#: scaled to a 256 px short side first (halving COCO photos hides their JPEG blocks, which the
#: network would otherwise learn as "detail"), decoded once into memory, bf16 where native.
SR_RECIPES: dict[str, dict[str, Any]] = {
    "paper": {"steps": 200_000, "batch_size": 4, "lr": 1e-3, "patch": 288, "variant": "paper",
              "lr_schedule": "constant", "num_workers": 2, "resize_short": None, "grid_jitter": 0,
              "pixel_weight": 0.0},
    "cpu": {"steps": 3000, "batch_size": 8, "lr": 5e-4, "patch": {2: 96, 4: 96, 8: 128}, "variant": "modern",
            "lr_schedule": "cosine", "num_workers": 0, "resize_short": 256, "grid_jitter": 0,
            "pixel_weight": 0.0},
}


@dataclass
class SRTrainSettings(TrainSettings):
    """:class:`~perceptual_utils.training.settings.TrainSettings` plus the SR task's data settings (``None``:
    the recipe's). ``patch``: HR patch side, a multiple of the scale (LR patches are
    ``patch // scale``). ``sigma``: Gaussian blur before downsampling (paper 1.0). ``resize_short``:
    scale training photos to this short side first (``0``: native scale). ``preview_image``: HR
    image for the previews (default: the first training image)."""

    patch: int | None = None
    sigma: float = 1.0
    resize_short: int | None = None
    preview_image: str | os.PathLike | None = None
    grid_jitter: int | None = None
    pixel_weight: float | None = None

    recipe_keys = TrainSettings.recipe_keys + ("patch", "resize_short", "grid_jitter", "pixel_weight")


#: :class:`SuperResolutionNet` options a ``net`` dict (or a flat keyword) may set; ``variant``
#: defaults to the recipe's.
SR_NET_KEYS = ("scale", "variant", "channels", "num_residual", "norm", "upsample", "padding", "global_residual")


def train_sr(
    data: str | os.PathLike | None = None,
    out_dir: str | os.PathLike = "runs/sr",
    *,
    net: dict[str, Any] | None = None,
    loss: str = "feature",
    feature_layer: str = CONTENT_LAYER,
    train: TrainSettings | None = None,
    vgg_weights: str | os.PathLike | None = None,
    **options: Any,
) -> TrainResult:
    """Train a :class:`SuperResolutionNet`; writes ``out_dir/model.safetensors``.

    ``train_sr(data, out, net={"scale": 4}, loss="feature", train=SRTrainSettings(steps=3000))``:
    the same shape as :func:`~perceptual_utils.style.training.train_style`. Each field may also be
    given as a flat keyword (``scale=4, steps=3000``, the older call style; ``net_options=`` is
    the older name of ``net``), which wins over the objects.

    Settings left ``None`` come from the recipe (:data:`SR_RECIPES`: ``"paper"``, the default
    with CUDA: batch 4, 200k steps, Adam 1e-3, 288 px; ``"cpu"``, the default without).

    Args:
        data: folder of training images (default: :func:`default_training_data`).
        out_dir: run folder (checkpoint, model.safetensors, history.csv, previews/).
        net: :class:`SuperResolutionNet` options (:data:`SR_NET_KEYS`): ``scale`` 2, 4 or 8
            (default 4), ``variant`` ``"paper"`` or ``"modern"`` (default: the recipe's), ...
        loss: ``"feature"`` (feature reconstruction at ``feature_layer``) or ``"pixel"`` (per-pixel baseline).
        feature_layer: VGG-16 layer of the feature loss: the paper's ``relu2_2`` by default. SRGAN and
            ESRGAN use the fifth block; the shipped ``x4_feature`` uses ``relu3_3``, which beat ``relu2_2``
            and ``relu5_3`` on Set5 LPIPS in the same 25 CPU minutes (``docs/cpu-training.md``, "SR x4").
        train: an :class:`SRTrainSettings` (steps, batch size, learning rate, patch, resume, ...).
        vgg_weights: VGG-16 weights file of the feature loss (the older keyword ``weights`` is the same).

    Returns:
        The :class:`~perceptual_utils.training.loop.TrainResult` (history, speed, model path) with the
        trained network as ``result.model`` (eval mode, on the CPU).
    """
    options = dict(options)
    legacy_net = options.pop("net_options", None) or {}
    train, net, rest = sort_options("train_sr", options, train, SRTrainSettings, {**legacy_net, **(net or {})},
                                    SR_NET_KEYS, ("weights",))
    vgg_weights = vgg_weights if vgg_weights is not None else rest.get("weights")
    scale = int(net.pop("scale", 4))
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose from {', '.join(LOSSES)}")
    check_layers(feature_layer)  # before the data are read, not when the loss network is built
    r = train.resolve(SR_RECIPES, variant=net.pop("variant", None))
    patch = int(r["patch"][int(scale)] if isinstance(r["patch"], dict) else r["patch"])
    if patch < 1 or patch % scale:
        raise ValueError(f"patch size {patch} must be a positive multiple of the scale {scale}")
    data = Path(data).resolve() if data is not None else default_training_data()
    seed_everything(train.seed)  # the same initial weights for every run with this seed
    model = SuperResolutionNet(scale=scale, **({"variant": r["variant"]} | net))
    initialised = train.initialise(model)
    resize = r["resize_short"]
    resize = max(int(resize), patch) if resize else (0 if resize == 0 else None)
    dataset = ImageFolderDataset(data, size=patch, resize_short=resize,
                                 transform=make_lr_hr_pair(scale, train.sigma), seed=train.seed)
    loss_fn = SRLoss(loss, feature_layer, vgg_weights=vgg_weights,
                     grid_jitter=r["grid_jitter"] if loss == "feature" else 0, pixel_weight=r["pixel_weight"])

    def make_batch() -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [dataset[i] for i in range(int(r["batch_size"]))]
        return torch.stack([a for a, _ in pairs]), torch.stack([b for _, b in pairs])

    total_steps, channels_last = plan_run(train, int(r["steps"]), out_dir, model, loss_fn, [(1.0, make_batch)],
                                          train.device)
    preview_src = load_image(train.preview_image) if train.preview_image else _first_readable(data)
    config = train.loop_config(r, total_steps, channels_last, out_dir)
    info = {"task": "super_resolution", "recipe": r["recipe"], "scale": int(scale), "loss": loss,
            "layer": feature_layer if loss == "feature" else None, "data": str(data), "patch": int(patch),
            "sigma": float(train.sigma), "resize_short": resize, **initialised}
    if loss_fn.grid_jitter:  # recorded only when used: runs without it keep their old settings (and resume)
        info["grid_jitter"] = loss_fn.grid_jitter
    if loss_fn.pixel_weight:  # likewise
        info["pixel_weight"] = loss_fn.pixel_weight
    if train.time_budget is not None:
        info["time_budget"] = str(train.time_budget)
    result = train_loop(model, dataset, loss_fn, config, out_dir, training_info=info,
                        preview_fn=make_preview_fn(preview_src, scale, patch, train.sigma), resume=train.resume,
                        stop_after=train.stop_after)
    result.model = model.cpu().eval()
    return result


def _run(args: argparse.Namespace) -> int:
    check_training_args(args)
    check_export(args)  # before hours of training, not after
    if args.data is not None and not Path(args.data).is_dir():
        raise CLIError(f"{args.data}: no such folder of training images")
    net = {k: v for k, v in {"scale": args.scale, "variant": args.variant, "channels": args.channels,
                             "num_residual": args.num_residual, "norm": args.norm,
                             "upsample": args.upsample}.items() if v is not None}
    train = SRTrainSettings.from_args(args, patch=args.patch, sigma=args.sigma, grid_jitter=args.grid_jitter,
                                      pixel_weight=args.pixel_weight)
    result = train_sr(args.data, args.out, net=net, loss=args.loss, feature_layer=args.feature_layer, train=train,
                      vgg_weights=args.weights)
    return report_training(result, args, kind="super_resolution")


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add the ``train-sr`` command."""
    p = sub.add_parser("train-sr", help="train a super-resolution network (feature or per-pixel loss)",
                       description="Train a super-resolution network. Without CUDA the cpu recipe is the default "
                                   "(modern network with a residual over bicubic, small patches, cosine decay); "
                                   "--recipe paper gives the paper's. Re-running the same command resumes from "
                                   "the last checkpoint in --out.")
    p.add_argument("--scale", type=int, default=4, choices=(2, 4, 8))
    p.add_argument("--loss", default="feature", choices=LOSSES)
    p.add_argument("--feature-layer", default=CONTENT_LAYER, choices=VGG16_LAYERS, metavar="LAYER",
                   help=f"VGG-16 layer of the feature loss (default and paper: {CONTENT_LAYER})")
    p.add_argument("--data", default=None, help="folder of training images (default: data/train/coco_mini or t91)")
    add_training_arguments(p, recipes=SR_RECIPES)
    p.add_argument("--patch", type=int, help="HR patch side in px (paper: 288; cpu: 96/96/128 at x2/x4/x8)")
    p.add_argument("--sigma", type=float, default=1.0, help="Gaussian blur before downsampling (paper: 1.0)")
    p.add_argument("--grid-jitter", type=int, metavar="PX",
                   help="feature loss at a random offset below PX pixels, so the network's upsampling grid cannot "
                        "lock onto VGG's pooling grid (default 0)")
    p.add_argument("--pixel-weight", type=float, metavar="W",
                   help="with --loss feature, also add W times the per-pixel loss (not in the paper; an SRGAN-style "
                        "mix against the cross-hatching the relu2_2 loss tolerates; default 0)")
    p.add_argument("--variant", choices=("paper", "modern"), help="network (paper recipe: paper, cpu: modern)")
    p.add_argument("--channels", type=int, default=None)
    p.add_argument("--num-residual", type=int, default=None)
    p.add_argument("--norm", default=None, choices=("batch", "instance", "none"))
    p.add_argument("--upsample", default=None, choices=("transposed", "nearest"))
    p.set_defaults(func=_run)
