"""Train a feed-forward style transfer network (Johnson et al. 2016, Sec. 4.1 and supplementary).

The paper's recipe is the default: 256x256 crops of MS-COCO, batch 4, 40k iterations (about two
epochs of the 80k images), Adam with learning rate 1e-3, content loss at ``relu2_2``, style loss
at ``relu1_2``, ``relu2_2``, ``relu3_3``, ``relu4_3``, and total-variation regularisation.

Loss weights: the paper's weights were tuned for the Caffe VGG-16 (BGR, 0-255 inputs), whose
feature magnitudes differ from torchvision's, so they do not carry over. Unless given, the
weights are :class:`~perceptual_utils.losses.PerceptualLoss`'s defaults, which are calibrated
for the torchvision weights with images in [0, 1] (see README, "Loss weights"): the same
objective that :func:`~perceptual_utils.optimization.gatys.gatys_style_transfer` minimises, so the
network and the optimisation baseline can be compared on one objective (the paper's Fig. 5).

The loop itself (checkpoints, exact resume, AMP, DDP under ``torchrun``, previews) is the shared
:func:`~perceptual_utils.training.loop.train_loop`.
"""
from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..blocks import UPSAMPLES
from ..config import resolve_device, seed_everything
from ..images import center_crop, load_image, resize_short_side
from ..losses import LossWeights, PerceptualLoss
from ..training.cli import add_training_arguments, check_export, report_training
from ..training.loop import TrainResult, train_loop
from ..training.planning import plan_run
from ..training.settings import TrainSettings, sort_options
from ..training_data import ImageFolderDataset
from ..validation import check_training_args
from ..vgg.network import CONTENT_LAYER, STYLE_LAYERS
from .add_style import ADD_TO_LR, NewStyleLoss, new_style_network, open_add_to, source_objective
from .data import StyleIndexedDataset, crop_schedule, default_preview_images
from .nearest import NEAREST, nearest_shipped_network
from .net import StyleTransferNet
from .objective import MultiStyleTransferLoss, StyleTransferLoss

#: fast-neural-style's default: the style image is scaled so its long side is 384 px.
DEFAULT_STYLE_SIZE = 384


def _style_list(style: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    paths = [style] if isinstance(style, (str, os.PathLike)) else list(style)
    if not paths:
        raise ValueError("at least one style image is needed")
    return [Path(p).resolve() for p in paths]


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
#: - the loss scores a crop of the output at a random offset of 0-7 px (``grid_jitter=8``, see
#:   :func:`~perceptual_utils.losses.jittered_crop`), so the network's 4-px grid cannot lock onto
#:   VGG's pooling grid: it cut the checkerboard of 160-step runs 5-7x (two seeds), but a 518-step
#:   twin pair measured no benefit (docs/artefacts.md, "Grid jitter over longer runs"), so long
#:   runs may pass ``--grid-jitter 0``;
#: - no shift-consistency term by default (``shift_weight=0``; see
#:   :func:`~perceptual_utils.losses.shift_consistency_loss`), though it is what removes the
#:   checkerboard of longer runs: the output of the photo moved by 1-3 px must be the output moved
#:   likewise (the network is shift-equivariant only for 4-px moves, and the Gram loss, blind to
#:   where a texture sits, lets it paint a pattern fixed to its grid). Starry Night,
#:   ``--shift-weight 1000``, 30-minute budget on the AVX2 machine (377 steps): checkerboard
#:   energy 5.9x the photo's against 180x for the shipped model and 215x after 2,000 steps without
#:   it. But it costs about 20% more time per step and slows the start: the objective was 10%
#:   higher after 160 steps and 35% higher after notebook 04's 59 steps (30.6 against 22.9 on a
#:   held-out photo). So it is one flag away for runs of half an hour or more;
#: - data decoded once into memory, no loader processes (they would compete with the two
#:   cores that do the arithmetic), bf16 autocast where the CPU computes bf16 natively.
STYLE_RECIPES: dict[str, dict[str, Any]] = {
    "paper": {"steps": 40_000, "batch_size": 4, "lr": 1e-3, "image_size": 256, "variant": "paper",
              "lr_schedule": "constant", "fine_tune_size": None, "fine_tune_fraction": 0.0,
              "resize_short": None, "num_workers": 2, "loss": LossWeights(), "grid_jitter": 0,
              "shift_weight": 0.0},
    "cpu": {"steps": 4000, "batch_size": 4, "lr": 1e-3, "image_size": 128, "variant": "modern",
            "lr_schedule": "cosine", "fine_tune_size": 256, "fine_tune_fraction": 0.15,
            "resize_short": 256, "num_workers": 0, "loss": LossWeights(style_weight=2.0), "grid_jitter": 8,
            "shift_weight": 0.0},
}


@dataclass
class StyleTrainSettings(TrainSettings):
    """:class:`~perceptual_utils.training.settings.TrainSettings` plus the style task's data settings
    (``None``: the recipe's).

    ``image_size``: side of the square training crops (paper 256, cpu 128). ``fine_tune_size``,
    ``fine_tune_fraction``: train the last fraction of the steps on crops of this size (cpu: the
    last 15% at 256 px). ``resize_short``: scale photos to this short side before cropping
    (default: the crop size). ``style_size``: the style image's long side in px (``None``: as is;
    larger values give smaller brush strokes relative to the content). ``preview_images``: fixed
    validation photos (tensor ``(N, 3, H, W)`` or files; default: the data root's ``content/``
    photos, cropped to ``min(image_size, 256)``). ``grid_jitter``: score a crop of the output
    at a random offset below this many pixels each step (cpu 8, paper 0; see
    :func:`~perceptual_utils.losses.jittered_crop`).
    ``shift_weight``: weight of the shift-consistency term (0 in both recipes; 1000 for runs of
    half an hour or more, see :func:`~perceptual_utils.losses.shift_consistency_loss`).
    """

    image_size: int | None = None
    fine_tune_size: int | None = None
    fine_tune_fraction: float | None = None
    resize_short: int | None = None
    style_size: int | None = DEFAULT_STYLE_SIZE
    preview_images: torch.Tensor | Sequence[str | os.PathLike] | None = None
    grid_jitter: int | None = None
    shift_weight: float | None = None

    recipe_keys = TrainSettings.recipe_keys + ("image_size", "fine_tune_size", "fine_tune_fraction", "resize_short",
                                               "grid_jitter", "shift_weight")


#: :class:`StyleTransferNet` options a ``net`` dict (or a flat keyword) may set; ``variant`` defaults to the recipe's.
STYLE_NET_KEYS = ("variant", "channels", "num_residual", "upsample", "global_residual")


def train_style(
    style: str | os.PathLike | Sequence[str | os.PathLike],
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    net: dict[str, Any] | None = None,
    loss: LossWeights | None = None,
    train: TrainSettings | None = None,
    content_layer: str = CONTENT_LAYER,
    style_layers: Sequence[str] = STYLE_LAYERS,
    style_weights: Sequence[float] | None = None,
    vgg_weights: str | os.PathLike | None = None,
    add_to: str | os.PathLike | None = None,
    **options: Any,
) -> TrainResult:
    """Train a :class:`StyleTransferNet` for one style image (or one network for several, with
    conditional instance norm); writes ``out_dir/model.safetensors``.

    ``train_style(style, data, out, net={"channels": 16}, loss=LossWeights(style_weight=2),
    train=StyleTrainSettings(steps=4000, recipe="cpu"))``; the same shape as
    :func:`~perceptual_utils.sr.training.train_sr`. Each field may also be given as a flat keyword
    (``steps=4000, channels=16, style_weight=2``, the older call style), which wins over the objects.

    Settings left ``None`` come from the recipe (:data:`STYLE_RECIPES`: ``"paper"``, the default
    with CUDA, or ``"cpu"``, the default without); any value given explicitly wins.

    Args:
        style: the style image file, or a list of several: one network then learns all of them
            (``num_styles=len(style)``, Dumoulin et al. 2017; needs the instance-norm ``modern``
            variant, the cpu recipe's). Step ``s`` trains style ``s % N`` (one style per batch, so
            a step costs what a single-style step costs, and exact resume stays exact); the Gram
            targets of every style are computed once. The model file records the style names in
            its training info (``"styles"``). A list of one file is the single-style run.
        data: a folder of training photos (searched recursively), e.g. MS-COCO ``train2014``.
        out_dir: run folder (checkpoint, model file, ``history.csv``, ``previews/``).
        net: :class:`StyleTransferNet` options (:data:`STYLE_NET_KEYS`; ``upsample=None`` takes
            the variant's default, ``variant`` the recipe's).
        loss: the :class:`~perceptual_utils.losses.LossWeights` (default: the recipe's, which are
            the calibrated defaults except the cpu recipe's style weight 2).
        train: a :class:`StyleTrainSettings` (steps, batch size, learning rate, crops, resume, ...).
        content_layer, style_layers: VGG-16 layers of the two losses (paper defaults).
        style_weights: one style weight per style image (instead of ``style_weight``), e.g. to
            balance a painting whose Gram matrices are far from photos' against a gentler one.
        vgg_weights: VGG-16 weights file (default: resolved as in :mod:`perceptual_utils.vgg.weights`;
            the older keyword ``weights`` is the same).
        add_to: a multi-style model (a shipped name such as ``"paintings"`` or a file): learn ``style``
            (one painting) as a new style of it, only that style's ``gamma``, ``beta`` (Dumoulin et
            al. 2017; :mod:`perceptual_utils.style.add_style`), at the learning rate
            :data:`~perceptual_utils.style.add_style.ADD_TO_LR` unless one is given. The model file
            holds the shared weights and every style, the new one named after the painting file's
            stem; the painting's size and the loss layers are the source's. The source is only read.

    Returns:
        The :class:`~perceptual_utils.training.loop.TrainResult` (model path, loss history, images/s),
        with the trained network as ``result.model`` (eval mode, on the training device).
    """
    train, net, rest = sort_options("train_style", options, train, StyleTrainSettings, net, STYLE_NET_KEYS,
                                    ("content_weight", "style_weight", "tv_weight", "weights"))
    vgg_weights = vgg_weights if vgg_weights is not None else rest.get("weights")
    style_weight = rest.get("style_weight")
    r = train.resolve(STYLE_RECIPES, variant=net.get("variant"), loss=loss)
    style_size, seed = train.style_size, train.seed
    style_paths = _style_list(style)
    num_styles = len(style_paths)
    source = None
    if add_to is not None:
        source, source_path = open_add_to(add_to, style_paths, net, train.init_from)
        style_size, content_layer, style_layers = source_objective(source, style_size, content_layer, style_layers)
        r["lr"] = ADD_TO_LR if train.lr is None else r["lr"]
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
    grid_jitter = r["grid_jitter"]  # checked by the loss
    largest = max(crop, int(r["fine_tune_size"] or 0))
    resize = max(int(r["resize_short"] or largest), largest)

    weights = r["loss"].updated(**{k: rest.get(k) for k in ("content_weight", "style_weight", "tv_weight")})
    if style_weights is not None and num_styles == 1:  # the same as style_weight=...
        weights = weights.updated(style_weight=per_style[0])
    w = weights.as_dict()
    perceptual = PerceptualLoss.from_weights(weights, content_layer=content_layer, style_layers=list(style_layers),
                                             vgg_weights=vgg_weights)
    dev = resolve_device(train.device)
    perceptual.to(dev)
    if num_styles == 1:
        perceptual.set_style(style_images[0])
        loss_fn = StyleTransferLoss(perceptual, grid_jitter, r["shift_weight"])
    else:
        targets = []
        for image in style_images:
            perceptual.set_style(image)
            targets.append(perceptual.target_grams)
        loss_fn = MultiStyleTransferLoss(perceptual, targets,
                                         per_style if style_weights is not None else [w["style_weight"]] * num_styles,
                                         grid_jitter, r["shift_weight"])

    probe = ImageFolderDataset(data, size=largest, resize_short=resize, seed=seed)
    fraction = float(r["fine_tune_fraction"]) if r["fine_tune_size"] else 0.0

    def batch_of(size: int):
        def make():
            batch = torch.stack([center_crop(probe[i], size) for i in range(int(r["batch_size"]))])
            return (batch, torch.zeros(batch.shape[0], dtype=torch.long)) if num_styles > 1 else batch
        return make

    seed_everything(seed)  # the same initial weights for a fresh run and its resumption
    if source is not None:  # the source's network, one style slot more, all else frozen
        model, initialised = new_style_network(source, source_path, style_paths[0], w["style_weight"])
        loss_fn = NewStyleLoss(perceptual, source.num_styles, grid_jitter, r["shift_weight"])
    else:
        model = StyleTransferNet(**(net | {"variant": r["variant"]}), num_styles=num_styles)
        nearest = {}
        if train.init_from == NEAREST:  # the shipped network that already scores best on this painting
            if num_styles > 1:
                raise ValueError("--init-from nearest takes one --style painting")
            name, scores = nearest_shipped_network(model.config, StyleTransferLoss(perceptual), batch_of(crop)())
            train, nearest = replace(train, init_from=name), {"init_from_scores": scores}
            if train.progress:
                print(f"--init-from nearest: {name} (objective on this painting: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()) + ")", flush=True)
        initialised = train.initialise(model) | nearest
    shown = source.num_styles if source is not None else None  # the style the previews show

    stages = [(1.0 - fraction, batch_of(crop))] + ([(fraction, batch_of(int(r["fine_tune_size"])))]
                                                   if fraction else [])
    total_steps, channels_last = plan_run(train, int(r["steps"]), out_dir, model, loss_fn, stages, dev)
    schedule = crop_schedule(total_steps, crop, r["fine_tune_size"], float(r["fine_tune_fraction"]))
    samples_per_step = int(r["batch_size"]) * int(os.environ.get("WORLD_SIZE", "1"))
    dataset = ImageFolderDataset(data, size=largest, resize_short=resize, seed=seed, size_schedule=schedule,
                                 samples_per_step=samples_per_step)
    if num_styles > 1:
        dataset = StyleIndexedDataset(dataset, num_styles, samples_per_step)

    size = min(largest, 256)
    preview_images = train.preview_images
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
        return torch.cat([x, model(x, style=shown).float()], dim=-2)  # photo above, stylised below

    config = train.loop_config(r, total_steps, channels_last, out_dir)
    info: dict[str, Any] = {
        "task": "style_transfer", "recipe": r["recipe"],
        "style": str(style_paths[0]), "style_name": style_paths[0].stem, "style_size": style_size,
        "data": str(Path(data).resolve()), "data_images": len(dataset), "image_size": crop,
        "crop_schedule": [list(stage) for stage in schedule], "resize_short": resize,
        "content_layer": content_layer, "style_layers": list(style_layers), **w,
        "loss_network": "torchvision VGG-16 (IMAGENET1K_V1)", **initialised,
    }
    if num_styles > 1:  # single-style runs keep exactly their old settings (old checkpoints resume)
        info.update({"style": [str(p) for p in style_paths], "style_name": "+".join(p.stem for p in style_paths),
                     "styles": [p.stem for p in style_paths], "style_weights": list(loss_fn.style_weights)})
    if loss_fn.grid_jitter:  # recorded only when used: runs without it keep their old settings (and resume)
        info["grid_jitter"] = loss_fn.grid_jitter
    if loss_fn.shift_weight:  # likewise
        info["shift_weight"] = loss_fn.shift_weight
    if train.time_budget is not None:
        info["time_budget"] = str(train.time_budget)
    result = train_loop(model, dataset, loss_fn, config, out_dir, training_info=info,
                        preview_fn=preview_fn if preview is not None else None, resume=train.resume,
                        stop_after=train.stop_after)
    result.model = model.eval()  # the trained network itself, on the training device
    return result


# ----------------------------------------------------------------------------- command line

def _run_cli(args: argparse.Namespace) -> int:
    check_training_args(args)
    check_export(args)  # before hours of training, not after
    net = {k: v for k, v in {"variant": args.variant, "channels": args.channels, "num_residual": args.num_residual,
                             "upsample": args.upsample}.items() if v is not None}
    train = StyleTrainSettings.from_args(args, image_size=args.image_size, style_size=args.style_size or None,
                                         fine_tune_size=args.fine_tune_size,
                                         fine_tune_fraction=args.fine_tune_fraction, grid_jitter=args.grid_jitter,
                                         shift_weight=args.shift_weight)
    # The weights given on top of the recipe's (flat keywords: a weight left out keeps the recipe's).
    given = {k: getattr(args, k) for k in ("content_weight", "style_weight", "tv_weight")
             if getattr(args, k) is not None}
    result = train_style(args.style, args.data, args.out, net=net, train=train, vgg_weights=args.weights,
                         style_weights=args.style_weights or None, add_to=args.add_to, **given)
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
    p.add_argument("--add-to", metavar="MODEL",
                   help="learn the --style painting as a new style of this multi-style model (a shipped name such "
                        "as paintings, or a model file): only its scale and shift of every norm layer are trained "
                        "(Dumoulin et al. 2017), the new file holds every style, the new one named after the "
                        "painting file; the source is not modified. Learning rate 1e-2 unless --lr is given")
    add_training_arguments(p, recipes=STYLE_RECIPES)
    p.add_argument("--image-size", type=int, help="training crop side (paper: 256, cpu: 128)")
    p.add_argument("--fine-tune-size", type=int, help="crop side of the final fine-tune (cpu: 256)")
    p.add_argument("--fine-tune-fraction", type=float, help="share of the steps at --fine-tune-size (cpu: 0.15)")
    p.add_argument("--grid-jitter", type=int, metavar="PX",
                   help="score the output at a random offset below PX pixels, so the network's grid cannot lock "
                        "onto VGG's pooling grid (checkerboard) (paper: 0, cpu: 8)")
    p.add_argument("--shift-weight", type=float, metavar="W",
                   help="weight of a shift-consistency loss: the output of the photo moved by 1-3 px should be "
                        "the output moved likewise, which charges for patterns fixed to the network's 4-px grid "
                        "(checkerboard, video flicker); not in the paper; 1000 removes most of the checkerboard of "
                        "half-hour runs but slows short ones (default 0)")
    p.add_argument("--style-size", type=int, default=DEFAULT_STYLE_SIZE,
                   help="style image long side in px, 0 = unchanged (default: %(default)s)")
    p.add_argument("--content-weight", type=float, help="default: calibrated PerceptualLoss default (1)")
    p.add_argument("--style-weight", type=float, help="default: paper recipe 5 (calibrated), cpu recipe 2")
    p.add_argument("--tv-weight", type=float, help="default: calibrated PerceptualLoss default (1)")
    p.add_argument("--style-weights", type=float, nargs="+", metavar="W",
                   help="one style weight per --style image (instead of --style-weight), e.g. 2 3 2")
    p.add_argument("--variant", choices=("paper", "modern"), help="network (paper recipe: paper, cpu: modern)")
    p.add_argument("--channels", type=int, default=None, help="width of the first layer (paper: 32)")
    p.add_argument("--num-residual", type=int, default=None, help="residual blocks (paper: 5)")
    p.add_argument("--upsample", default=None, choices=UPSAMPLES,
                   help="upsampling layers (default: the variant's: paper transposed, modern nearest)")
    p.set_defaults(func=_run_cli)
