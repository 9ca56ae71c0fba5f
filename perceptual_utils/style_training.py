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
from .training import TrainConfig, TrainResult, add_training_arguments, report_training, train_loop

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


def default_preview_images(size: int, root: str | os.PathLike | None = None, count: int = 4) -> torch.Tensor:
    """Fixed validation photos for previews: the demo photos in ``<data root>/content`` (never in
    the training folder), topped up with scikit-image's samples; ``(count, 3, size, size)``."""
    return torch.stack(content_photos(count, size, root))


def train_style(
    style: str | os.PathLike,
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    steps: int = 40_000,
    batch_size: int = 4,
    lr: float = 1e-3,
    image_size: int = 256,
    style_size: int | None = DEFAULT_STYLE_SIZE,
    content_weight: float | None = None,
    style_weight: float | None = None,
    tv_weight: float | None = None,
    content_layer: str = CONTENT_LAYER,
    style_layers: Sequence[str] = STYLE_LAYERS,
    variant: str = "paper",
    channels: int = 32,
    num_residual: int = 5,
    upsample: str | None = None,
    checkpoint_every: int = 1000,
    preview_every: int = 500,
    preview_images: torch.Tensor | Sequence[str | os.PathLike] | None = None,
    seed: int = 0,
    num_workers: int = 2,
    device: str | None = None,
    amp: bool = True,
    progress: bool = True,
    resume: bool = True,
    stop_after: int | None = None,
    weights: str | os.PathLike | None = None,
) -> TrainResult:
    """Train a :class:`StyleTransferNet` for one style image; writes ``out_dir/model.safetensors``.

    Args:
        style: the style image file.
        data: a folder of training photos (searched recursively), e.g. MS-COCO ``train2014``.
        out_dir: run folder (checkpoint, model file, ``history.csv``, ``previews/``).
        steps, batch_size, lr: optimisation (paper: 40k, 4, 1e-3 with Adam).
        image_size: side of the square training crops (paper: 256).
        style_size: the style image's long side in px (``None``: as is). Larger values give
            smaller-scale brush strokes relative to the content.
        content_weight, style_weight, tv_weight: ``None`` uses PerceptualLoss's calibrated defaults.
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

    Returns:
        The :class:`~perceptual_utils.training.TrainResult` (model path, loss history, images/s),
        with the trained network attached as ``result.model``.
    """
    style_path = Path(style)
    style_image = load_image(style_path, size=style_size, long_side=True) if style_size else load_image(style_path)
    dataset = ImageFolderDataset(data, size=image_size, seed=seed)

    w = default_loss_weights()
    w.update({k: float(v) for k, v in (("content_weight", content_weight), ("style_weight", style_weight),
                                       ("tv_weight", tv_weight)) if v is not None})
    perceptual = PerceptualLoss(content_layer=content_layer, style_layers=list(style_layers), weights=weights, **w)
    dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    perceptual.to(dev)
    perceptual.set_style(style_image)

    if preview_images is None:
        preview = default_preview_images(min(image_size, 256))
    elif isinstance(preview_images, torch.Tensor):
        preview = preview_images if preview_images.dim() == 4 else preview_images.unsqueeze(0)
    else:
        size = min(image_size, 256)
        preview = torch.stack([center_crop(resize_short_side(load_image(p), size), size) for p in preview_images])

    def preview_fn(model: nn.Module) -> torch.Tensor:
        x = preview.to(next(model.parameters()).device)
        return torch.cat([x, model(x).float()], dim=-2)  # photo above, stylised below

    seed_everything(seed)  # the same initial weights for a fresh run and its resumption
    net = StyleTransferNet(variant=variant, channels=channels, num_residual=num_residual, upsample=upsample)
    config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed, checkpoint_every=checkpoint_every,
                         preview_every=preview_every, num_workers=num_workers, amp=amp, device=device,
                         progress=progress)
    info: dict[str, Any] = {
        "task": "style_transfer",
        "style": str(style_path), "style_name": style_path.stem, "style_size": style_size,
        "data": str(Path(data)), "data_images": len(dataset), "image_size": image_size,
        "content_layer": content_layer, "style_layers": list(style_layers), **w,
        "loss_network": "torchvision VGG-16 (IMAGENET1K_V1)",
    }
    result = train_loop(net, dataset, StyleTransferLoss(perceptual), config, out_dir, training_info=info,
                        preview_fn=preview_fn if preview is not None else None, resume=resume,
                        stop_after=stop_after)
    result.model = net.eval()  # the trained network itself, on the training device
    return result


# ----------------------------------------------------------------------------- command line

def _run_cli(args: argparse.Namespace) -> int:
    result = train_style(
        args.style, args.data, args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        image_size=args.image_size, style_size=args.style_size or None, content_weight=args.content_weight,
        style_weight=args.style_weight, tv_weight=args.tv_weight, variant=args.variant, channels=args.channels,
        checkpoint_every=args.checkpoint_every, preview_every=args.preview_every, seed=args.seed,
        num_workers=args.workers, device=args.device, amp=not args.no_amp, progress=not args.no_progress,
        resume=not args.no_resume, stop_after=args.stop_after, weights=args.weights,
    )
    return report_training(result, args, kind="style_transfer")


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train-style`` to the command line."""
    p = subparsers.add_parser(
        "train-style", help="train a feed-forward style transfer network for one style image",
        description="Train the paper's image transformation network for one style. Runs data-parallel "
                    "under torchrun (e.g. torchrun --nproc_per_node 4 -m perceptual_utils train-style ...). "
                    "Re-running the same command resumes from the last checkpoint in --out.")
    p.add_argument("--style", required=True, help="style image file")
    p.add_argument("--data", required=True, help="folder of training photos (e.g. MS-COCO train2014)")
    add_training_arguments(p, steps=40_000, paper_note="paper: 40000")
    p.add_argument("--image-size", type=int, default=256, help="training crop side (paper: 256)")
    p.add_argument("--style-size", type=int, default=DEFAULT_STYLE_SIZE,
                   help="style image long side in px, 0 = unchanged (default: %(default)s)")
    p.add_argument("--content-weight", type=float, help="default: calibrated PerceptualLoss default")
    p.add_argument("--style-weight", type=float, help="default: calibrated PerceptualLoss default")
    p.add_argument("--tv-weight", type=float, help="default: calibrated PerceptualLoss default")
    p.add_argument("--variant", choices=("paper", "modern"), default="paper")
    p.add_argument("--channels", type=int, default=32, help="width of the first layer (paper: 32)")
    p.set_defaults(func=_run_cli)
