"""The ``gatys`` and ``invert`` commands."""
from __future__ import annotations

import argparse

from ..cli_options import add_progress_option, add_threads_option, add_vgg_weights_option
from ..errors import CLIError
from ..images import load_image, save_image
from ..validation import check_finite, check_int, check_output_image, check_pixels, check_same_file
from .gatys import gatys_style_transfer
from .inversion import invert_features
from .runner import INITS, OPTIMIZERS


def _run_gatys_cli(args: argparse.Namespace) -> int:
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
        seed=args.seed, progress=args.progress, weights=args.weights)
    out = save_image(result.image, args.output)
    terms = ", ".join(f"{k} {v:.4g}" for k, v in result.final_losses.items())
    print(f"wrote {out} ({result.iterations} iterations, {result.seconds_per_iteration:.3f} s/iteration; {terms})")
    return 0


def _run_invert_cli(args: argparse.Namespace) -> int:
    if args.iterations < 1:
        raise CLIError(f"--iterations must be at least 1, got {args.iterations}")
    check_int("--size", args.size, minimum=1, optional=True)
    check_finite("--tv-weight", args.tv_weight, minimum=0)
    check_output_image(args.output)
    check_same_file(args.input, args.output)
    image = load_image(args.input, size=args.size) if args.size else load_image(args.input)
    check_pixels("image", *image.shape[-2:], hint="; use --size to shrink it")
    result = invert_features(image, args.layer, iterations=args.iterations, optimizer=args.optimizer,
                             tv_weight=args.tv_weight, seed=args.seed, progress=args.progress,
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
    add_vgg_weights_option(p)
    add_threads_option(p)
    add_progress_option(p)
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
    add_vgg_weights_option(q)
    add_threads_option(q)
    add_progress_option(q)
    q.set_defaults(func=_run_invert_cli)
