"""Does a style network follow the photo when the photo moves? ``python benchmarks/shift_consistency.py MODEL...``.

Scores each style model on the held-out photos (256 px) as the model cards do, plus the measure the
shift-consistency term trains for:

- the objective and the Gatys-equivalent iterations from the photo (cap ``--cap``);
- the checkerboard energy relative to the photo's own (power at the 2- and 4-pixel periods);
- the shift inconsistency (:func:`perceptual_utils.style.evaluation.shift_inconsistency`): the
  mean squared change of the output, beyond moving with it, when the photo moves by 1-3 px;
- the flat-bright area (:func:`perceptual_utils.style.evaluation.flat_bright_area`): the share of
  the output that is a smooth bright patch, where instance-norm blobs show (``benchmarks/blob_area.py``).

Default models: the shipped single-style ones and ``teaching/starry_night_shift_consistency``
(the recipe with ``--shift-weight 1000``). Run folders work too (their ``model.safetensors``).
Results: ``benchmarks/results/shift_consistency.json``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from perceptual_utils.config import machine_description
from perceptual_utils.datafiles import content_photos
from perceptual_utils.model_io import atomic_write, load_model, read_model_metadata
from perceptual_utils.shipped_models import list_models, models_dir
from perceptual_utils.style.evaluation import flat_bright_area, score_style_model, shift_inconsistency, summarise
from perceptual_utils.style.stylize import stylize

RESULTS = Path(__file__).resolve().parent / "results"


def default_models() -> list[Path]:
    single = [m.path for m in list_models("style_transfer")
              if "styles" not in read_model_metadata(m.path)["training"]]  # not the multi-style network
    return single + [models_dir() / "teaching" / "starry_night_shift_consistency.safetensors"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", type=Path, help="model files or run folders (default: see above)")
    p.add_argument("--photos", type=int, default=4)
    p.add_argument("--cap", type=int, default=60, help="most Gatys iterations per photo")
    p.add_argument("--out", type=Path, default=RESULTS / "shift_consistency.json")
    args = p.parse_args()
    paths = [m / "model.safetensors" if m.is_dir() else m for m in (args.models or default_models())]
    photos = content_photos(args.photos, 256)
    report = {"machine": machine_description(),
              "photos": args.photos, "size": 256, "cap": args.cap, "models": {}}
    t0 = time.perf_counter()
    for path in paths:
        net = load_model(path, kind="style_transfer").float()
        info = net.training_info
        scores = score_style_model(net, photos, starts=["content"], cap=args.cap, progress=False)
        s = summarise(scores, args.cap)
        moved = [shift_inconsistency(net, photo) for photo in photos]
        flat = [flat_bright_area(stylize(net, photo)) for photo in photos]
        row = {"shift_weight": info.get("shift_weight", 0.0), "grid_jitter": info.get("grid_jitter", 0),
               "steps": info.get("steps_done"), "train_minutes": round(info.get("train_seconds", 0) / 60, 1),
               "precision": info.get("precision"), "objective": s["network_objective_mean"],
               "gatys_iterations_content": s["gatys_iterations_content"],
               "gatys_per_photo": s["gatys_iterations_content_per_photo"],
               "checkerboard_ratio": s["checkerboard_ratio_mean"],
               "checkerboard_per_photo": [round(x.checkerboard_ratio, 2) for x in scores],
               "shift_inconsistency": sum(moved) / len(moved),
               "shift_inconsistency_per_photo": [round(v, 5) for v in moved],
               "flat_bright_area": sum(flat) / len(flat), "flat_bright_area_per_photo": [round(a, 4) for a in flat]}
        name = path.stem if path.name != "model.safetensors" else path.parent.name
        report["models"][name] = row
        print(f"{name:<34} shift weight {row['shift_weight']:g}, {row['steps']} steps: objective "
              f"{row['objective']:.2f}, Gatys-equivalent {row['gatys_iterations_content']:g}, checkerboard "
              f"{row['checkerboard_ratio']:.1f}x, shift inconsistency {row['shift_inconsistency']:.4f}, flat-bright area "
              f"{100 * row['flat_bright_area']:.2f}%", flush=True)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write(args.out, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=2)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
