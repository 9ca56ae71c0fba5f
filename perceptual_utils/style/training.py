"""Train a feed-forward style transfer network (Johnson et al. 2016, Sec. 4.1 and supplementary).

The paper's recipe is the default: 256x256 crops of MS-COCO, batch 4, 40k iterations (about two
epochs of the 80k images), Adam with learning rate 1e-3, content loss at ``relu2_2``, style loss
at ``relu1_2``, ``relu2_2``, ``relu3_3``, ``relu4_3``, and total-variation regularisation.

Loss weights: the paper's weights were tuned for the Caffe VGG-16 (BGR, 0-255 inputs), whose
feature magnitudes differ from torchvision's, so they do not carry over. Unless given, the
weights are :class:`~perceptual_utils.losses.PerceptualLoss`'s defaults, which are calibrated
for the torchvision weights with images in [0, 1] (see README, "Loss weights"): the same
objective that :func:`~perceptual_utils.optimize.gatys_style_transfer` minimises, so the
network and the optimisation baseline can be compared on one objective (the paper's Fig. 5).

The loop itself (checkpoints, exact resume, AMP, DDP under ``torchrun``, previews) is the shared
:func:`~perceptual_utils.training.train_loop`.
"""
from __future__ import annotations

import argparse
import inspect
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import seed_everything
from .data import content_photos
from .datasets import ImageFolderDataset
from .images import center_crop, load_image, resize_short_side
from .loss_network import CONTENT_LAYER, STYLE_LAYERS
from .losses import PerceptualLoss
from .style_net import StyleTransferNet
from .config import resolve_device
from .validation import check_training_args
from .training import (TrainConfig, TrainResult, add_training_arguments, budgeted_steps, measure_step_seconds,
                       report_training, resolve_recipe, train_loop)

#: fast-neural-style's default: the style image is scaled so its long side is 384 px.
DEFAULT_STYLE_SIZE = 384


def default_loss_weights() -> dict[str, float]:
    """PerceptualLoss's calibrated default weights (read from its signature, so they stay in sync)."""
    params = inspect.signature(PerceptualLoss.__init__).parameters
    return {k: float(params[k].default) for k in ("content_weight", "style_weight", "tv_weight")}


class StyleTransferLoss(nn.Module):
    """``loss_fn(model, batch)`` for :func:`train_loop`: stylise the batch and score it with the
    perceptual loss against the batch itself (content) and the fixed style Gram matrices."""

    def __init__(self, perceptual: PerceptualLoss):
        super().__init__()
        self.perceptual = perceptual

    def forward(self, model: nn.Module, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        grams = self.perceptual.target_grams
        # Gram targets are plain tensors, not buffers, so .to(device) does not move them: do it here once.
        if grams and next(iter(grams.values())).device != batch.device:
            self.perceptual.target_grams = {k: v.to(batch.device) for k, v in grams.items()}
        return self.perceptual(model(batch), content=batch)


class MultiStyleTransferLoss(nn.Module):
    """``loss_fn(model, (batch, styles))`` for a multi-style network (conditional instance norm):
    the batch is stylised with the style it was drawn for (``styles``: per-image indices, from
    :class:`StyleIndexedDataset`) and scored against that style's Gram targets and style weight.

    One :class:`PerceptualLoss` (one VGG-16) serves all styles: the per-style Gram targets are
    computed once and swapped in per batch, so a step costs the same as with one style.
    """

    def __init__(self, perceptual: PerceptualLoss, target_grams: Sequence[dict[str, torch.Tensor]],
                 style_weights: Sequence[float]):
        super().__init__()
        if len(target_grams) != len(style_weights) or not target_grams:
            raise ValueError("one style weight per style target is needed")
        self.perceptual = perceptual
        self.target_grams = [dict(g) for g in target_grams]
        self.style_weights = [float(w) for w in style_weights]

    def forward(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        images, styles = batch
        s = int(styles[0])
        if bool((styles != s).any()):
            raise ValueError("MultiStyleTransferLoss expects one style per batch")
        grams = self.target_grams[s]
        # Plain tensors, not buffers: move them to the batch's device on first use.
        if next(iter(grams.values())).device != images.device:
            grams = self.target_grams[s] = {k: v.to(images.device) for k, v in grams.items()}
        self.perceptual.target_grams = grams
        self.perceptual.style_weight = self.style_weights[s]
        return self.perceptual(model(images, style=styles), content=images)


class StyleIndexedDataset(torch.utils.data.Dataset):
    """Wrap a step-indexed dataset (e.g. :class:`ImageFolderDataset`) for multi-style training:
    sample ``i`` is ``(image, style)`` with ``style = (i // samples_per_step) % num_styles``.

    So every batch (all processes of a step) has one style, the styles take turns step by step
    (each gets the same share of the steps and of every crop-size stage), and the style of a step
    is a pure function of the step number, which keeps exact resume exact.
    """

    def __init__(self, dataset: torch.utils.data.Dataset, num_styles: int, samples_per_step: int):
        self.dataset, self.num_styles, self.samples_per_step = dataset, int(num_styles), max(1, int(samples_per_step))

    def style_of_step(self, step: int) -> int:
        return int(step) % self.num_styles

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, sample: int):
        return self.dataset[sample], self.style_of_step(int(sample) // self.samples_per_step)


def _style_list(style: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    paths = [style] if isinstance(style, (str, os.PathLike)) else list(style)
    if not paths:
        raise ValueError("at least one style image is needed")
    return [Path(p).resolve() for p in paths]


def default_preview_images(size: int, root: str | os.PathLike | None = None, count: int = 4) -> torch.Tensor:
    """Fixed validation photos for previews: the demo photos in ``<data root>/content`` (never in
    the training folder), topped up with scikit-image's samples; ``(count, 3, size, size)``."""
    return torch.stack(content_photos(count, size, root))


#: The two recipes. ``paper``: Johnson et al.'s (GPU) settings. ``cpu``: what trains a usable
#: network on a laptop CPU in under an hour (see README, "Training on a CPU"):
#:
#: - ``variant="modern"``: instance norm (Ulyanov et al. 2016) trains much faster than batch
#:   norm at batch size 4, and nearest-neighbour upsampling + conv has no checkerboard, which a
#:   short run would not have time to learn away;
#: - 85% of the steps on 128 px crops (4x cheaper than 256 px) cut from photos scaled to a 256 px
#:   short side, so the strokes are learned at the pixel scale of a 256-512 px photo; then 15% at
#:   256 px, so the network also sees whole-photo layouts;
#: - a cosine learning-rate decay (1e-3 to 1e-4), which lets a short run settle;
#: - style weight 2 instead of 5: ``benchmarks/loss_weights.py`` shows 5 at the knee of the
#:   style-gap curve (strongly stylised), 2 removes 95% of the style gap and keeps more layout;
#: - data decoded once into memory, no loader processes (they would compete with the two
#:   cores that do the arithmetic), bf16 autocast where the CPU computes bf16 natively.
STYLE_RECIPES: dict[str, dict[str, Any]] = {
    "paper": {"steps": 40_000, "batch_size": 4, "lr": 1e-3, "image_size": 256, "variant": "paper",
              "lr_schedule": "constant", "fine_tune_size": None, "fine_tune_fraction": 0.0,
              "resize_short": None, "num_workers": 2, "style_weight": None},
    "cpu": {"steps": 4000, "batch_size": 4, "lr": 1e-3, "image_size": 128, "variant": "modern",
            "lr_schedule": "cosine", "fine_tune_size": 256, "fine_tune_fraction": 0.15,
            "resize_short": 256, "num_workers": 0, "style_weight": 2.0},
}
RECIPES = tuple(STYLE_RECIPES)


def crop_schedule(steps: int, image_size: int, fine_tune_size: int | None,
                  fine_tune_fraction: float) -> list[tuple[int, int]]:
    """``[(first_step, crop_size), ...]``: ``image_size`` crops, then the last
    ``fine_tune_fraction`` of the steps at ``fine_tune_size``."""
    if not fine_tune_size or fine_tune_fraction <= 0 or fine_tune_size == image_size:
        return [(0, int(image_size))]
    if not 0 < fine_tune_fraction < 1:
        raise ValueError(f"fine_tune_fraction must be in [0, 1), got {fine_tune_fraction}")
    first = max(1, int(round(steps * (1 - fine_tune_fraction))))
    return [(0, int(image_size)), (first, int(fine_tune_size))] if first < steps else [(0, int(image_size))]


def train_style(
    style: str | os.PathLike | Sequence[str | os.PathLike],
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    image_size: int | None = None,
    style_size: int | None = DEFAULT_STYLE_SIZE,
    content_weight: float | None = None,
    style_weight: float | None = None,
    tv_weight: float | None = None,
    content_layer: str = CONTENT_LAYER,
    style_layers: Sequence[str] = STYLE_LAYERS,
    variant: str | None = None,
    channels: int = 32,
    num_residual: int = 5,
    upsample: str | None = None,
    checkpoint_every: int = 1000,
    preview_every: int = 500,
    preview_images: torch.Tensor | Sequence[str | os.PathLike] | None = None,
    seed: int = 0,
    num_workers: int | None = None,
    device: str | None = None,
    amp: bool = True,
    progress: bool = True,
    resume: bool = True,
    stop_after: int | None = None,
    weights: str | os.PathLike | None = None,
    recipe: str | None = None,
    time_budget: str | float | None = None,
    lr_schedule: str | None = None,
    fine_tune_size: int | None = None,
    fine_tune_fraction: float | None = None,
    resize_short: int | None = None,
    style_weights: Sequence[float] | None = None,
) -> TrainResult:
    """Train a :class:`StyleTransferNet` for one style image (or one network for several, with
    conditional instance norm); writes ``out_dir/model.safetensors``.

    Settings left ``None`` come from ``recipe`` (:data:`STYLE_RECIPES`: ``"paper"``, the
    default with CUDA, or ``"cpu"``, the default without); any value given explicitly wins.

    Args:
        style: the style image file, or a list of several: one network then learns all of them
            (``num_styles=len(style)``, Dumoulin et al. 2017; needs the instance-norm ``modern``
            variant, the cpu recipe's). Step ``s`` trains style ``s % N`` (one style per batch, so
            a step costs what a single-style step costs, and exact resume stays exact); the Gram
            targets of every style are computed once. The model file records the style names in
            its training info (``"styles"``). A list of one file is the single-style run.
        data: a folder of training photos (searched recursively), e.g. MS-COCO ``train2014``.
        out_dir: run folder (checkpoint, model file, ``history.csv``, ``previews/``).
        steps, batch_size, lr: optimisation (paper: 40k, 4, 1e-3 with Adam).
        image_size: side of the square training crops (paper: 256; cpu recipe: 128).
        style_size: the style image's long side in px (``None``: as is). Larger values give
            smaller-scale brush strokes relative to the content.
        content_weight, style_weight, tv_weight: ``None`` uses the recipe's weights, which are
            PerceptualLoss's calibrated defaults except the cpu recipe's style weight 2.
        content_layer, style_layers: VGG-16 layers of the two losses (paper defaults).
        variant, channels, num_residual, upsample: architecture (see :class:`StyleTransferNet`;
            ``upsample=None`` takes the variant's default).
        checkpoint_every, preview_every: intervals in steps.
        preview_images: fixed validation photos (tensor ``(N, 3, H, W)`` or files); default: the
            photos in ``<data root>/content`` cropped to ``min(image_size, 256)``.
        seed: initial weights, crop positions and data order.
        resume: continue from ``out_dir/checkpoint.safetensors`` if present (exactly: the same
            loss sequence as an uninterrupted run).
        stop_after: stop after this many steps of this call (checkpointed, resumable).
        weights: VGG-16 weights file (default: resolved as in :mod:`perceptual_utils.weights`).
        recipe: ``"paper"`` or ``"cpu"`` (default: by device, see :func:`default_recipe`).
        time_budget: e.g. ``"30m"``: measure this machine's seconds per step at each crop size
            and choose ``steps`` so the whole schedule (crop sizes, learning-rate decay) ends on
            time. A resumed run keeps the plan stored in its checkpoint.
        lr_schedule: ``"constant"`` (paper) or ``"cosine"``.
        fine_tune_size, fine_tune_fraction: train the last fraction of the steps on crops of
            this size (cpu recipe: the last 15% at 256 px).
        resize_short: scale photos to this short side before cropping (default: the crop size).
        style_weights: one style weight per style image (instead of ``style_weight``), e.g. to
            balance a painting whose Gram matrices are far from photos' against a gentler one.

    Returns:
        The :class:`~perceptual_utils.training.TrainResult` (model path, loss history, images/s),
        with the trained network attached as ``result.model``.
    """
    r = resolve_recipe(recipe, STYLE_RECIPES, {
        "steps": steps, "batch_size": batch_size, "lr": lr, "image_size": image_size, "variant": variant,
        "lr_schedule": lr_schedule, "fine_tune_size": fine_tune_size, "fine_tune_fraction": fine_tune_fraction,
        "resize_short": resize_short, "num_workers": num_workers, "style_weight": style_weight})
    style_paths = _style_list(style)
    num_styles = len(style_paths)
    style_images = [load_image(p, size=style_size, long_side=True) if style_size else load_image(p)
                    for p in style_paths]
    if style_weights is not None:
        per_style = [float(v) for v in style_weights]
        if len(per_style) != num_styles:
            raise ValueError(f"--style-weights needs one weight per style image ({num_styles} styles, "
                             f"{len(per_style)} weights)")
        if not all(math.isfinite(v) and v >= 0 for v in per_style):
            raise ValueError(f"style weights must be finite and non-negative, got {per_style}")
        if style_weight is not None:
            raise ValueError("give either style_weight (--style-weight) or style_weights (--style-weights), not both")
    crop = int(r["image_size"])
    largest = max(crop, int(r["fine_tune_size"] or 0))
    resize = max(int(r["resize_short"] or largest), largest)

    w = default_loss_weights()
    w.update({k: float(v) for k, v in (("content_weight", content_weight), ("style_weight", r["style_weight"]),
                                       ("tv_weight", tv_weight)) if v is not None})
    if style_weights is not None and num_styles == 1:  # the same as style_weight=...
        w["style_weight"] = per_style[0]
    perceptual = PerceptualLoss(content_layer=content_layer, style_layers=list(style_layers), weights=weights, **w)
    dev = resolve_device(device)
    perceptual.to(dev)
    if num_styles == 1:
        perceptual.set_style(style_images[0])
        loss_fn = StyleTransferLoss(perceptual)
    else:
        targets = []
        for image in style_images:
            perceptual.set_style(image)
            targets.append(perceptual.target_grams)
        loss_fn = MultiStyleTransferLoss(perceptual, targets,
                                         per_style if style_weights is not None else [w["style_weight"]] * num_styles)

    seed_everything(seed)  # the same initial weights for a fresh run and its resumption
    net = StyleTransferNet(variant=r["variant"], channels=channels, num_residual=num_residual, upsample=upsample,
                           num_styles=num_styles)

    total_steps = int(r["steps"])
    if time_budget is not None:
        def measure_stages() -> list[tuple[float, float]]:
            probe = ImageFolderDataset(data, size=largest, resize_short=resize, seed=seed)
            fraction = float(r["fine_tune_fraction"]) if r["fine_tune_size"] else 0.0
            stages = [(1.0 - fraction, crop)] + ([(fraction, int(r["fine_tune_size"]))] if fraction else [])
            costs = []
            for share, size in stages:
                batch = torch.stack([center_crop(probe[i], size) for i in range(int(r["batch_size"]))])
                if num_styles > 1:
                    batch = (batch, torch.zeros(batch.shape[0], dtype=torch.long))
                costs.append((share, measure_step_seconds(net, loss_fn, batch, dev, amp=amp)))
            return costs

        total_steps = budgeted_steps(out_dir, time_budget, resume, measure_stages)
    schedule = crop_schedule(total_steps, crop, r["fine_tune_size"], float(r["fine_tune_fraction"]))
    samples_per_step = int(r["batch_size"]) * int(os.environ.get("WORLD_SIZE", "1"))
    dataset = ImageFolderDataset(data, size=largest, resize_short=resize, seed=seed, size_schedule=schedule,
                                 samples_per_step=samples_per_step)
    if num_styles > 1:
        dataset = StyleIndexedDataset(dataset, num_styles, samples_per_step)

    size = min(largest, 256)
    if preview_images is None:
        preview = default_preview_images(size)
    elif isinstance(preview_images, torch.Tensor):
        preview = preview_images if preview_images.dim() == 4 else preview_images.unsqueeze(0)
    else:
        preview = torch.stack([center_crop(resize_short_side(load_image(p), size), size) for p in preview_images])

    def preview_fn(model: nn.Module) -> torch.Tensor:
        x = preview.to(next(model.parameters()).device)
        if num_styles > 1:  # photo above, then one row per style
            return torch.cat([x] + [model(x, style=i).float() for i in range(num_styles)], dim=-2)
        return torch.cat([x, model(x).float()], dim=-2)  # photo above, stylised below

    config = TrainConfig(steps=total_steps, batch_size=int(r["batch_size"]), lr=float(r["lr"]), seed=seed,
                         checkpoint_every=checkpoint_every, preview_every=preview_every,
                         num_workers=int(r["num_workers"]), amp=amp, device=device, progress=progress,
                         lr_schedule=r["lr_schedule"])
    info: dict[str, Any] = {
        "task": "style_transfer", "recipe": r["recipe"],
        "style": str(style_paths[0]), "style_name": style_paths[0].stem, "style_size": style_size,
        "data": str(Path(data).resolve()), "data_images": len(dataset), "image_size": crop,
        "crop_schedule": [list(stage) for stage in schedule], "resize_short": resize,
        "content_layer": content_layer, "style_layers": list(style_layers), **w,
        "loss_network": "torchvision VGG-16 (IMAGENET1K_V1)",
    }
    if num_styles > 1:  # single-style runs keep exactly their old settings (old checkpoints resume)
        info.update({"style": [str(p) for p in style_paths], "style_name": "+".join(p.stem for p in style_paths),
                     "styles": [p.stem for p in style_paths], "style_weights": list(loss_fn.style_weights)})
    if time_budget is not None:
        info["time_budget"] = str(time_budget)
    result = train_loop(net, dataset, loss_fn, config, out_dir, training_info=info,
                        preview_fn=preview_fn if preview is not None else None, resume=resume,
                        stop_after=stop_after)
    result.model = net.eval()  # the trained network itself, on the training device
    return result


# ----------------------------------------------------------------------------- command line

def _run_cli(args: argparse.Namespace) -> int:
    check_training_args(args)
    result = train_style(
        args.style, args.data, args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        image_size=args.image_size, style_size=args.style_size or None, content_weight=args.content_weight,
        style_weight=args.style_weight, tv_weight=args.tv_weight, variant=args.variant, channels=args.channels,
        checkpoint_every=args.checkpoint_every, preview_every=args.preview_every, seed=args.seed,
        num_workers=args.workers, device=args.device, amp=not args.no_amp, progress=not args.no_progress,
        resume=not args.no_resume, stop_after=args.stop_after, weights=args.weights, recipe=args.recipe,
        time_budget=args.time_budget, lr_schedule=args.lr_schedule, fine_tune_size=args.fine_tune_size,
        fine_tune_fraction=args.fine_tune_fraction,
        **({"style_weights": args.style_weights} if getattr(args, "style_weights", None) else {}),
    )
    return report_training(result, args, kind="style_transfer")


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train-style`` to the command line."""
    p = subparsers.add_parser(
        "train-style",
        help="train a feed-forward style transfer network (one style, or several with conditional instance norm)",
        description="Train the paper's image transformation network for one style. Without CUDA the cpu recipe "
                    "is the default (modern network, 128 px crops then a 256 px fine-tune, cosine decay, bf16 where "
                    "native); --recipe paper gives the paper's. Runs data-parallel under torchrun. "
                    "Re-running the same command resumes from the last checkpoint in --out.")
    p.add_argument("--style", required=True, nargs="+",
                   help="style image file; several files train one multi-style network (conditional instance "
                        "norm, modern variant; each step trains the next style in turn)")
    p.add_argument("--data", required=True, help="folder of training photos (e.g. MS-COCO train2014)")
    add_training_arguments(p, recipes=STYLE_RECIPES)
    p.add_argument("--image-size", type=int, help="training crop side (paper: 256, cpu: 128)")
    p.add_argument("--fine-tune-size", type=int, help="crop side of the final fine-tune (cpu: 256)")
    p.add_argument("--fine-tune-fraction", type=float, help="share of the steps at --fine-tune-size (cpu: 0.15)")
    p.add_argument("--style-size", type=int, default=DEFAULT_STYLE_SIZE,
                   help="style image long side in px, 0 = unchanged (default: %(default)s)")
    p.add_argument("--content-weight", type=float, help="default: calibrated PerceptualLoss default (1)")
    p.add_argument("--style-weight", type=float, help="default: paper recipe 5 (calibrated), cpu recipe 2")
    p.add_argument("--tv-weight", type=float, help="default: calibrated PerceptualLoss default (1)")
    p.add_argument("--style-weights", type=float, nargs="+", metavar="W",
                   help="one style weight per --style image (instead of --style-weight), e.g. 2 3 2")
    p.add_argument("--variant", choices=("paper", "modern"), help="network (paper recipe: paper, cpu: modern)")
    p.add_argument("--channels", type=int, default=32, help="width of the first layer (paper: 32)")
    p.set_defaults(func=_run_cli)
