"""Training super-resolution networks with a feature-reconstruction or a per-pixel loss.

The paper's recipe (Section 4.2): 288x288 HR patches (MS-COCO), LR inputs made by a Gaussian
blur (sigma = 1) and bicubic downsampling, batch size 4, 200k iterations, Adam with learning
rate 1e-3, and either the feature reconstruction loss at VGG-16 ``relu2_2`` ("perceptual") or
the per-pixel squared error (the baseline). The loop itself (progress, previews, atomic
checkpoints, exact resume, AMP, DDP, model file) is :func:`perceptual_utils.training.train_loop`,
shared with the style-transfer networks.

``python -m perceptual_utils train-sr --scale 4 --loss feature --data DIR --steps 200000 --out runs/sr_x4``
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .cli import CLIError
from .config import seed_everything
from .data import default_training_data
from .datasets import ImageFolderDataset
from .degradation import bicubic_upsample, degrade, make_lr_hr_pair
from .images import ImageLoadError, center_crop, list_images, load_image, resize_short_side
from .loss_network import CONTENT_LAYER, LossNetwork
from .losses import feature_reconstruction_loss, pixel_loss
from .sr_net import SuperResolutionNet
from .validation import check_training_args
from .training import (TrainConfig, TrainResult, add_training_arguments, budgeted_steps, measure_step_seconds,
                       report_training, resolve_recipe, train_loop)

LOSSES = ("feature", "pixel")


class SRLoss(nn.Module):
    """``loss_fn(model, (lr, hr))`` for the training loop: ``{"total", "feature" | "pixel"}``.

    ``"feature"``: ``l_feat`` at ``relu2_2`` between the output and the HR patch (the paper's
    perceptual loss); ``"pixel"``: mean squared error in RGB (the baseline).
    """

    def __init__(self, loss: str = "feature", layer: str = CONTENT_LAYER, loss_network: LossNetwork | None = None,
                 weights: str | os.PathLike | None = None):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose from {', '.join(LOSSES)}")
        self.loss, self.layer = loss, layer
        if loss == "feature":
            self.loss_network = loss_network if loss_network is not None else LossNetwork([layer], weights=weights)
            if layer not in self.loss_network.layers:
                raise ValueError(f"loss network does not tap {layer!r}")
        else:
            self.loss_network = None

    def forward(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        lr, hr = batch
        sr = model(lr)
        if self.loss == "pixel":
            term = pixel_loss(sr, hr)
        else:
            with torch.no_grad():
                target = self.loss_network(hr)[self.layer]
            term = feature_reconstruction_loss(self.loss_network(sr)[self.layer], target)
        return {self.loss: term, "total": term}


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
              "lr_schedule": "constant", "num_workers": 2, "resize_short": None},
    "cpu": {"steps": 3000, "batch_size": 8, "lr": 5e-4, "patch": {2: 96, 4: 96, 8: 128}, "variant": "modern",
            "lr_schedule": "cosine", "num_workers": 0, "resize_short": 256},
}


def train_sr(
    scale: int = 4,
    loss: str = "feature",
    data: str | os.PathLike | None = None,
    steps: int | None = None,
    out_dir: str | os.PathLike = "runs/sr",
    batch_size: int | None = None,
    lr: float | None = None,
    patch: int | None = None,
    sigma: float = 1.0,
    seed: int = 0,
    checkpoint_every: int = 1000,
    preview_every: int = 500,
    num_workers: int | None = None,
    resume: bool = True,
    progress: bool = True,
    device: str | None = None,
    stop_after: int | None = None,
    net_options: dict[str, Any] | None = None,
    weights: str | os.PathLike | None = None,
    preview_image: str | os.PathLike | None = None,
    amp: bool = True,
    recipe: str | None = None,
    time_budget: str | float | None = None,
    lr_schedule: str | None = None,
    variant: str | None = None,
    resize_short: int | None = None,
) -> tuple[SuperResolutionNet, TrainResult]:
    """Train a :class:`SuperResolutionNet`; writes ``out_dir/model.safetensors``.

    Settings left ``None`` come from ``recipe`` (:data:`SR_RECIPES`: ``"paper"``, the default
    with CUDA: batch 4, 200k steps, Adam 1e-3, 288 px; ``"cpu"``, the default without).

    Args:
        scale: 2, 4 or 8.
        loss: ``"feature"`` (relu2_2 feature reconstruction) or ``"pixel"`` (per-pixel baseline).
        data: folder of training images (default: :func:`default_training_data`).
        steps: total optimisation steps (resuming continues up to this number).
        out_dir: run folder (checkpoint, model.safetensors, history.csv, previews/).
        patch: HR patch side; must be a multiple of ``scale`` (LR patches are ``patch // scale``).
        sigma: Gaussian blur before downsampling (paper: 1.0).
        stop_after: stop after this many steps of this call (resumable), e.g. for time-boxed runs.
        net_options: extra :class:`SuperResolutionNet` arguments (channels, num_residual, norm, ...).
        preview_image: HR image for previews (default: the first training image).
        amp: mixed precision (CUDA; CPUs with native bf16).
        recipe: ``"paper"`` or ``"cpu"`` (default: by device).
        time_budget: e.g. ``"30m"``: choose ``steps`` from the measured seconds per step so the
            schedule ends on time (a resumed run keeps its plan).
        lr_schedule: ``"constant"`` or ``"cosine"``.
        variant: ``"paper"`` or ``"modern"`` network (see :class:`SuperResolutionNet`).
        resize_short: scale training photos to this short side first (``0``: native scale).

    Returns:
        The trained network (eval mode) and the :class:`TrainResult` (history, speed, model path).
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose from {', '.join(LOSSES)}")
    r = resolve_recipe(recipe, SR_RECIPES, {"steps": steps, "batch_size": batch_size, "lr": lr, "patch": patch,
                                            "variant": variant, "lr_schedule": lr_schedule,
                                            "num_workers": num_workers, "resize_short": resize_short})
    patch = int(r["patch"][int(scale)] if isinstance(r["patch"], dict) else r["patch"])
    if patch < 1 or patch % scale:
        raise ValueError(f"patch size {patch} must be a positive multiple of the scale {scale}")
    data = Path(data).resolve() if data is not None else default_training_data()
    seed_everything(seed)  # the same initial weights for every run with this seed
    model = SuperResolutionNet(scale=scale, **({"variant": r["variant"]} | (net_options or {})))
    resize = r["resize_short"]
    resize = max(int(resize), patch) if resize else (0 if resize == 0 else None)
    dataset = ImageFolderDataset(data, size=patch, resize_short=resize,
                                 transform=make_lr_hr_pair(scale, sigma), seed=seed)
    loss_fn = SRLoss(loss, weights=weights)
    total_steps = int(r["steps"])
    if time_budget is not None:
        def measure_stages() -> list[tuple[float, float]]:
            pairs = [dataset[i] for i in range(int(r["batch_size"]))]
            batch = (torch.stack([a for a, _ in pairs]), torch.stack([b for _, b in pairs]))
            return [(1.0, measure_step_seconds(model, loss_fn, batch, device, amp=amp))]

        total_steps = budgeted_steps(out_dir, time_budget, resume, measure_stages)
    preview_src = load_image(preview_image) if preview_image else _first_readable(data)
    config = TrainConfig(steps=total_steps, batch_size=int(r["batch_size"]), lr=float(r["lr"]), seed=seed,
                         checkpoint_every=checkpoint_every, preview_every=preview_every,
                         num_workers=int(r["num_workers"]), amp=amp, device=device, progress=progress,
                         lr_schedule=r["lr_schedule"])
    info = {"task": "super_resolution", "recipe": r["recipe"], "scale": int(scale), "loss": loss,
            "layer": CONTENT_LAYER if loss == "feature" else None, "data": str(data), "patch": int(patch),
            "sigma": float(sigma), "resize_short": resize}
    if time_budget is not None:
        info["time_budget"] = str(time_budget)
    result = train_loop(model, dataset, loss_fn, config, out_dir, training_info=info,
                        preview_fn=make_preview_fn(preview_src, scale, patch, sigma), resume=resume,
                        stop_after=stop_after)
    return model.cpu().eval(), result


def _run(args: argparse.Namespace) -> int:
    check_training_args(args)
    if args.data is not None and not Path(args.data).is_dir():
        raise CLIError(f"{args.data}: no such folder of training images")
    net_options = {k: v for k, v in {"channels": args.channels, "num_residual": args.num_residual,
                                     "norm": args.norm, "upsample": args.upsample}.items() if v is not None}
    _, result = train_sr(scale=args.scale, loss=args.loss, data=args.data, steps=args.steps, out_dir=args.out,
                         batch_size=args.batch_size, lr=args.lr, patch=args.patch, sigma=args.sigma, seed=args.seed,
                         checkpoint_every=args.checkpoint_every, preview_every=args.preview_every,
                         num_workers=args.workers, resume=not args.no_resume, device=args.device,
                         net_options=net_options, progress=not args.no_progress, amp=not args.no_amp,
                         stop_after=args.stop_after, weights=args.weights, recipe=args.recipe,
                         time_budget=args.time_budget, lr_schedule=args.lr_schedule, variant=args.variant)
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
    p.add_argument("--data", default=None, help="folder of training images (default: data/train/coco_mini or t91)")
    add_training_arguments(p, recipes=SR_RECIPES)
    p.add_argument("--patch", type=int, help="HR patch side in px (paper: 288; cpu: 96/96/128 at x2/x4/x8)")
    p.add_argument("--sigma", type=float, default=1.0, help="Gaussian blur before downsampling (paper: 1.0)")
    p.add_argument("--variant", choices=("paper", "modern"), help="network (paper recipe: paper, cpu: modern)")
    p.add_argument("--channels", type=int, default=None)
    p.add_argument("--num-residual", type=int, default=None)
    p.add_argument("--norm", default=None, choices=("batch", "instance", "none"))
    p.add_argument("--upsample", default=None, choices=("transposed", "nearest"))
    p.set_defaults(func=_run)
