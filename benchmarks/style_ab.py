"""A/B tests of the style network's CPU recipe: ``python benchmarks/style_ab.py --compare upsampling|grid-jitter|global-residual``.

Trains the cpu recipe's ``modern`` network twice with everything equal (style, data, seed, steps,
crop schedule, loss weights) except one setting, then scores both on the held-out photos as the
model cards do (:mod:`perceptual_utils.style.evaluation`): the objective, the Gatys-equivalent
iterations from the photo, and the checkerboard energy relative to the photo's own (the 2- and
4-pixel periods; the shipped models sit at 15-180x after ~650 steps).

- ``upsampling``: nearest (the recipe's) vs bilinear upsampling layers
  (:class:`~perceptual_utils.blocks.UpsampleLayer`), both without grid jitter;
- ``grid-jitter``: the loss on the whole output vs on a crop at a random 0-7 px offset
  (:func:`~perceptual_utils.losses.jittered_crop`, the recipe's default since this A/B);
- ``global-residual``: the network's output ``scaled_tanh(body(x))`` vs ``x + body(x)`` with the
  last conv zero-initialised (``StyleTransferNet(global_residual=True)``), so training starts
  at the photo, as Gatys' optimisation from the photo does; both without grid jitter.

Runs are shared between comparisons (the nearest, unjittered run is both baselines) and resume
from ``--runs`` (outside the work tree), so a cut-short call can be re-run; a finished run is only
scored. Output: ``benchmarks/results/<compare>_ab.json`` and a picture (photo, both outputs; below,
the high-pass detail of their centres, 4x) ``benchmarks/results/<compare>_ab.jpg``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from perceptual_utils.config import data_root, machine_description
from perceptual_utils.datafiles import content_photos, default_training_data
from perceptual_utils.images import gaussian_blur, save_image
from perceptual_utils.model_io import load_model
from perceptual_utils.style.evaluation import score_style_model, scores_to_json, summarise
from perceptual_utils.style.stylize import stylize
from perceptual_utils.style.training import train_style

RESULTS = Path(__file__).resolve().parent / "results"
#: Every run's settings besides the recipe's (each pins what any comparison varies).
RUNS = {"nearest": {"upsample": "nearest", "grid_jitter": 0},
        "bilinear": {"upsample": "bilinear", "grid_jitter": 0},
        "grid_jitter_8": {"upsample": "nearest", "grid_jitter": 8},
        "global_residual": {"upsample": "nearest", "grid_jitter": 0, "global_residual": True},
        "shift_100": {"upsample": "nearest", "grid_jitter": 0, "shift_weight": 100.0},
        "shift_1000": {"upsample": "nearest", "grid_jitter": 0, "shift_weight": 1000.0}}
#: comparison -> (baseline run, changed run, results file stem)
COMPARISONS = {"upsampling": ("nearest", "bilinear", "upsampling_ab"),
               "grid-jitter": ("nearest", "grid_jitter_8", "grid_jitter_ab"),
               "global-residual": ("nearest", "global_residual", "global_residual_ab"),
               "shift-100": ("nearest", "shift_100", "shift_100_ab"),
               "shift-1000": ("nearest", "shift_1000", "shift_1000_ab")}


def detail(image: torch.Tensor) -> torch.Tensor:
    """High-pass (image minus a blurred copy), grey, contrast-stretched: makes a 2-4 px pattern visible."""
    d = (image - gaussian_blur(image, 2.0)).mean(0, keepdim=True)
    return (0.5 + d / (6 * float(d.std()) + 1e-8)).clamp(0, 1).expand(3, -1, -1)


def trained_run(name: str, style: Path, data: Path, runs: Path, steps: int, seed: int = 0):
    """The finished run ``name`` of :data:`RUNS` (trained or resumed here if need be)."""
    run, settings = runs / (name if seed == 0 else f"{name}_seed{seed}"), RUNS[name]
    if not (run / "model.safetensors").is_file():
        t0 = time.perf_counter()
        train_style(style, data, run, steps=steps, preview_every=steps, checkpoint_every=max(1, steps // 2),
                    progress=False, seed=seed, **settings)
        print(f"{name}: trained {steps} steps in {time.perf_counter() - t0:.0f} s")
    net = load_model(run / "model.safetensors")
    info = net.training_info
    recorded = {"upsample": net.config["upsample"], "grid_jitter": info.get("grid_jitter", 0),
                "global_residual": net.config.get("global_residual", False),
                "shift_weight": info.get("shift_weight", 0.0)}
    found = {k: recorded[k] for k in settings}
    if found != settings or info["steps_done"] != steps or info["seed"] != seed:
        raise SystemExit(f"error: {run} holds a run with {found}, {info['steps_done']} steps, not {settings}, "
                         f"{steps} steps, seed {seed}; remove it or give another --runs")
    return net


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--compare", choices=tuple(COMPARISONS), required=True, help="which setting to vary")
    p.add_argument("--style", default=None, help="style image (default: the data root's starry_night_crop.jpg)")
    p.add_argument("--data", default=None, help="training photos (default: coco_mini, or train2014 if fetched)")
    p.add_argument("--runs", default=str(Path.home() / "runs" / "style_ab"), help="run folders (resumable)")
    p.add_argument("--steps", type=int, default=160)
    p.add_argument("--seed", type=int, default=0, help="initial weights and data order (results file: *_seedN)")
    p.add_argument("--photos", type=int, default=4)
    p.add_argument("--cap", type=int, default=60, help="most Gatys iterations per photo")
    args = p.parse_args()
    style = Path(args.style) if args.style else data_root() / "styles" / "starry_night_crop.jpg"
    data = Path(args.data) if args.data else default_training_data()
    *names, stem = COMPARISONS[args.compare]
    stem += f"_seed{args.seed}" if args.seed else ""
    photos = content_photos(args.photos, 256)
    report = {"machine": machine_description(),
              "style": style.name, "steps": args.steps, "seed": args.seed, "photos": args.photos,
              "settings": {name: RUNS[name] for name in names}, "runs": {}}
    outputs = {}
    for name in names:
        net = trained_run(name, style, data, Path(args.runs), args.steps, args.seed)
        scores = score_style_model(net, photos, starts=["content"], cap=args.cap, progress=False)
        summary = summarise(scores, args.cap)
        report["runs"][name] = {"summary": summary, "per_photo": scores_to_json(scores),
                                "train_seconds": net.training_info.get("train_seconds"),
                                "precision": net.training_info.get("precision")}
        outputs[name] = stylize(net, photos[0])
        print(f"{name:<13} objective {summary['network_objective_mean']:.3f}, Gatys-equivalent iterations from the "
              f"photo {summary['gatys_iterations_content']:g} {summary['gatys_iterations_content_per_photo']}, "
              f"checkerboard energy {summary['checkerboard_ratio_mean']:.1f}x the photo's "
              f"{[round(s.checkerboard_ratio, 1) for s in scores]}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2))
    zoom = lambda t: torch.nn.functional.interpolate(t[None, :, 64:128, 64:128], scale_factor=4, mode="nearest")[0]
    top = torch.cat([photos[0]] + [outputs[n] for n in names], dim=-1)
    bottom = torch.cat([detail(zoom(photos[0]))] + [detail(zoom(outputs[n])) for n in names], dim=-1)
    save_image(torch.cat([top, bottom], dim=-2), RESULTS / f"{stem}.jpg")
    print(f"written: {RESULTS / (stem + '.json')}, {RESULTS / (stem + '.jpg')} "
          f"(columns: photo, {', '.join(names)}; bottom row: high-pass detail of the centre, 4x)")


if __name__ == "__main__":
    main()
