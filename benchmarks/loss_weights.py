"""The sweep behind PerceptualLoss's default weights: ``python benchmarks/loss_weights.py``.

The paper's loss weights were tuned for Caffe's VGG-16 (0-255 BGR input), so they do not carry
over to torchvision's VGG-16 on [0, 1] images. With the content weight fixed at 1, this script
runs Gatys' optimisation (L-BFGS from the content photo, the feed-forward network's objective)
for several style weights, then several TV weights, on content/style pairs of the data root
(scikit-image's photos where the data root lacks them), and prints *unweighted* terms of the
result relative to two references:

- ``style left``: the result's style loss / the content photo's style loss (1 = no style
  transferred, 0 = the painting's Gram matrices matched exactly);
- ``content drift``: the result's content loss / a flat grey image's content loss (0 = the
  photo's relu2_2 features intact, 1 = as far from the photo as a blank image);
- ``TV ratio``: the result's total variation / the photo's (noise shows as values well above 1).

How to read it: the style weight is chosen at the knee of ``style left`` (beyond it, much more
weight buys little more style while the content drift keeps growing), judged together with the
pictures of notebook 01; ``content drift`` alone overstates the loss of layout, because relu2_2
also responds to the new texture. Runs on whatever device is available; about four minutes on a
2-core CPU with the defaults.
"""
from __future__ import annotations

import argparse
import time

import torch

from perceptual_utils.config import seed_everything
from perceptual_utils.losses import PerceptualLoss
from perceptual_utils.optimization.gatys import gatys_style_transfer
from perceptual_utils.vgg.cache import get_loss_network
from perceptual_utils.datafiles import example_image

PAIRS = (("tubingen.jpg", "starry_night_crop.jpg"), ("chicago.jpg", "wave_crop.jpg"))
STYLE_WEIGHTS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
TV_WEIGHTS = (0.0, 0.1, 1.0, 10.0, 100.0)


def unweighted_objective(net, content: torch.Tensor, style: torch.Tensor):
    """``terms(image)``: content, style and TV terms of ``image`` with all weights 1 (the style
    Gram targets are computed once per pair)."""
    loss = PerceptualLoss(content_weight=1.0, style_weight=1.0, tv_weight=1.0, loss_network=net)
    loss.set_style(style[None])

    def terms(image: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            return {k: float(v) for k, v in loss(image[None], content=content[None]).items()}

    return terms


def sweep(content: torch.Tensor, style: torch.Tensor, iterations: int, net) -> list[dict[str, float]]:
    terms = unweighted_objective(net, content, style)
    photo, grey = terms(content), terms(torch.full_like(content, 0.5))
    rows = []
    settings = [(s, 1.0) for s in STYLE_WEIGHTS] + [(5.0, t) for t in TV_WEIGHTS if t != 1.0]
    for style_weight, tv_weight in settings:
        result = gatys_style_transfer(content, style, iterations=iterations, style_weight=style_weight,
                                      content_weight=1.0, tv_weight=tv_weight, progress=False, seed=0)
        t = terms(result.image)
        rows.append({"style_weight": style_weight, "tv_weight": tv_weight,
                     "style_left": t["style"] / photo["style"], "content_drift": t["content"] / grey["content"],
                     "tv_ratio": t["tv"] / photo["tv"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="content and style side in px (default: 128)")
    parser.add_argument("--iterations", type=int, default=100, help="L-BFGS iterations per run (default: 100)")
    args = parser.parse_args()
    seed_everything(0)
    net = get_loss_network(["relu1_2", "relu2_2", "relu3_3", "relu4_3"])
    start = time.perf_counter()
    for content_name, style_name in PAIRS:
        content, source = example_image(kind="content", name=content_name, size=args.size)
        style, style_source = example_image(kind="styles", name=style_name, size=args.size)
        print(f"\n{source} + {style_source}, {args.size} px, {args.iterations} L-BFGS iterations from the photo")
        print(f"{'style w':>8} {'TV w':>6} | {'style left':>10} {'content drift':>13} {'TV ratio':>8}")
        for row in sweep(content, style, args.iterations, net):
            print(f"{row['style_weight']:>8g} {row['tv_weight']:>6g} | {row['style_left']:>10.3f} "
                  f"{row['content_drift']:>13.3f} {row['tv_ratio']:>8.2f}")
    print(f"\n({time.perf_counter() - start:.0f} s on {next(net.buffers()).device})")


if __name__ == "__main__":
    main()
