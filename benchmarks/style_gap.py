"""How far a style network is from the Gatys-equivalent targets, in objective terms:
``python benchmarks/style_gap.py [benchmarks/results/cpu_recipe/*.json]``.

"Gatys-equivalent iterations" (the paper's Fig. 5) counts how many L-BFGS iterations of Gatys'
method reach the network's objective. The paper's protocol starts Gatys from white noise and clips
the pixels at every iteration (projected L-BFGS), and that is the default here (``--start noise``);
``--start content`` starts from the photo instead (a labelled extra: far fewer iterations). A count
says little about how much the network would have to improve to reach 30 or 50. This script
answers that: for every style scored by ``benchmarks/cpu_recipe.py`` it runs Gatys from ``--start``
for ``--iterations`` on the same held-out photos (same objective, same size) and prints, per photo and as a mean over the photos,

- the network's objective (read from the ``cpu_recipe`` JSON, not measured again);
- the objective Gatys reaches after 10, 30, 50 and 100 iterations;
- how much lower the network's objective would have to be to match 30 and 50 iterations.

The curve depends only on the objective (style image, its size, weights, layers) and the photo,
so a multi-style network's painting shares it with the single-style model of that painting.
Results: ``benchmarks/results/style_gap_noise.json`` (noise start) or ``style_gap.json`` (photo start).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import torch

from perceptual_utils.datafiles import content_photos
from perceptual_utils.model_io import atomic_write
from perceptual_utils.style.evaluation import gatys_iterations_to_reach, style_objective

RESULTS = Path(__file__).resolve().parent / "results"
MARKS = (10, 30, 50, 100)


def curve_key(objective, style: torch.Tensor, size: int, photos: int, iterations: int, start: str) -> str:
    """What the per-photo Gatys curves depend on: the style image, the weights and the layers (the
    objective), the photos and their size, where Gatys started and how far it ran. Stored with each entry, so
    ``--update`` can reuse its curves."""
    objective_parts = [hashlib.sha256(style.numpy().tobytes()).hexdigest(), objective.content_weight,
                       objective.style_weight, objective.tv_weight, objective.content_layer,
                       list(objective.style_layers)]
    return json.dumps([objective_parts, size, photos, iterations, start])


def styles_of(report: dict) -> list[tuple[str, int | None, dict]]:
    """``(label, style_index for style_objective, its cpu_recipe report)`` for each painting of a model."""
    model = Path(report["model"]).stem
    if "styles" not in report:
        return [(model, None, report)]
    return [(f"{model}/{name}", index, sub) for index, (name, sub) in enumerate(report["styles"].items())]


def at(curve: list[float], iteration: int) -> float:
    """The objective after ``iteration`` L-BFGS iterations (``curve[0]`` is the start)."""
    return curve[iteration] if iteration < len(curve) else math.nan


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", nargs="*", type=Path,
                   help="cpu_recipe JSON files of style models (default: all in benchmarks/results/cpu_recipe)")
    p.add_argument("--iterations", type=int, default=100, help="Gatys iterations per photo (default 100)")
    p.add_argument("--start", choices=("noise", "content"), default="noise",
                   help="Gatys' start: noise (the paper's protocol, default) or the photo (content)")
    p.add_argument("--out", type=Path, help="default: benchmarks/results/style_gap_noise.json for the noise "
                                           "start, style_gap.json (the photo start's curves) for the photo")
    p.add_argument("--update", action="store_true",
                   help="keep --out's other entries, and reuse its Gatys curves where an entry's objective, "
                        "photos and iterations are the same (e.g. a re-trained model of a painting already "
                        "there: only the network's objective is new)")
    args = p.parse_args()
    args.out = args.out or RESULTS / ("style_gap_noise.json" if args.start == "noise" else "style_gap.json")
    paths = args.reports or sorted((RESULTS / "cpu_recipe").glob("*.json"))
    reports = [json.loads(path.read_text()) for path in paths]
    reports = [r for r in reports if r.get("kind") == "style_transfer"]
    if not reports:
        raise SystemExit("error: no style-transfer reports of benchmarks/cpu_recipe.py among the given files")
    previous = json.loads(args.out.read_text()) if args.update and args.out.is_file() else {"styles": {}}
    # Gatys' objective after each of MARKS iterations, per photo, by curve_key
    marks: dict[str, list[dict[str, float]]] = {
        entry["curve_key"]: [{f"gatys_{k}": row[f"gatys_{k}"] for k in MARKS} for row in entry["per_photo"]]
        for entry in previous["styles"].values() if "curve_key" in entry}
    out = {"iterations": args.iterations, "start": args.start, "machine": f"torch {torch.__version__}, {torch.get_num_threads()} threads",
           "styles": dict(previous["styles"])}
    t0 = time.perf_counter()
    for report in reports:
        for label, style_index, scored in styles_of(report):
            photos = content_photos(len(scored["per_photo"]), report["size"])
            objective, style = style_objective(report["training"], style_index=style_index)  # VGG is cached
            key = curve_key(objective, style, report["size"], len(photos), args.iterations, args.start)
            if key in marks:
                print(f"   (Gatys curves for {label}: reused from {args.out.name})", flush=True)
            else:
                curves = [gatys_iterations_to_reach(-math.inf, photo, style, objective, start=args.start,
                                                    cap=args.iterations)[1] for photo in photos]
                marks[key] = [{f"gatys_{k}": at(curve, k) for k in MARKS} for curve in curves]
                print(f"   (Gatys curves for {label}: {time.perf_counter() - t0:.0f} s so far)", flush=True)
            rows = [{"photo": photo["photo"], "network": float(photo["network_objective"])} | gatys
                    for photo, gatys in zip(scored["per_photo"], marks[key])]
            mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0] if k != "photo"}
            need = {k: 1.0 - mean[f"gatys_{k}"] / mean["network"] for k in (30, 50)}
            out["styles"][label] = {"per_photo": rows, "mean": mean, "reduction_needed": need, "curve_key": key}
            print(f"{label:28s} network {mean['network']:6.2f} | Gatys "
                  + "  ".join(f"{k:3d} it {mean[f'gatys_{k}']:6.2f}" for k in MARKS)
                  + f" | to match 30 it: -{100 * need[30]:.0f}%, 50 it: -{100 * need[50]:.0f}%", flush=True)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write(args.out, lambda tmp: Path(tmp).write_text(json.dumps(out, indent=2)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
