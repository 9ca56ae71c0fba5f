"""Quality of networks trained with the CPU recipe: ``python benchmarks/cpu_recipe.py MODEL ...``.

For each model file (style or super-resolution) it prints the figures the CPU-training issue and
the model cards quote, and writes them to ``benchmarks/results/cpu_recipe/<model>.json``:

- style: on held-out photos (the data root's ``content/``, never in a training folder) at
  256 px, the network's objective, the Gatys-equivalent iterations from uniform noise (the
  paper's protocol, Fig. 5: Gatys et al. start from noise, and the pixels are clipped at every
  L-BFGS iteration), then from the photo as a labelled extra (see
  :mod:`perceptual_utils.style.evaluation`), and the checkerboard energy relative to the photo's own;
- super-resolution: PSNR / SSIM (Y channel, ``scale`` px shaved) and LPIPS on Set5, Set14 and
  BSD100 with the standard protocol, next to bicubic.

The training itself is the ``train-style`` / ``train-sr`` commands recorded in each model's
metadata (``models/README.md`` lists them); this script only measures.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from perceptual_utils.config import machine_description
from perceptual_utils.datafiles import content_photos
from perceptual_utils.model_io import read_model_metadata
from perceptual_utils.sr.evaluation import evaluate_methods
from perceptual_utils.style.evaluation import gatys_checkerboard_ratio, score_style_model, scores_to_json, summarise

RESULTS = Path(__file__).resolve().parent / "results" / "cpu_recipe"


def style_report(path: Path, photos: int, size: int, cap: int, starts: list[str], reference: int = 0,
                 style_index: int | None = None) -> dict:
    images = content_photos(photos, size)
    names = [f"held-out {i + 1}" for i in range(photos)]
    t0 = time.perf_counter()
    scores = score_style_model(path, images, names, starts=starts, cap=cap, style_index=style_index)
    summary = summarise(scores, cap)
    if reference:
        summary["gatys_checkerboard_ratio_photo1"] = gatys_checkerboard_ratio(path, images[0], reference,
                                                                              style_index=style_index)
        summary["gatys_reference_iterations"] = reference
    return {"kind": "style_transfer", "size": size, "cap": cap, "summary": summary,
            "per_photo": scores_to_json(scores), "seconds": time.perf_counter() - t0}


def print_style_summary(s: dict, starts: list[str], indent: str = "   ") -> None:
    for start in starts:
        bound = ">=" if s[f"gatys_iterations_{start}_capped"] else ""
        label = "from the photo (extra)" if start == "content" else "from noise (the paper's protocol)"
        print(f"{indent}Gatys-equivalent iterations {label}: "
              f"median {bound}{s[f'gatys_iterations_{start}']:g} (per photo "
              f"{s[f'gatys_iterations_{start}_per_photo']})")
    print(f"{indent}network objective (mean) {s['network_objective_mean']:.3f}; checkerboard energy vs photo "
          f"{s['checkerboard_ratio_mean']:.2f}x"
          + (f" (Gatys, {s['gatys_reference_iterations']} it, photo 1: {s['gatys_checkerboard_ratio_photo1']:.2f}x)"
             if "gatys_checkerboard_ratio_photo1" in s else ""))


def sr_report(path: Path, sets: list[str]) -> dict:
    scale = int(read_model_metadata(path)["config"]["scale"])
    rows, per_image = {}, {}
    results = evaluate_methods([("bicubic", "bicubic"), (None, path)], scale, sets=sets, progress=False)
    for key, result in zip(("bicubic", "network"), results):
        rows[key] = result.summary
        per_image[key] = [r for r in result.per_image if r["set"] == "Set5"]
    return {"kind": "super_resolution", "scale": scale, "rows": rows, "set5_per_image": per_image}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", type=Path, help="model files (.safetensors)")
    p.add_argument("--photos", type=int, default=4, help="held-out photos for style models (default 4)")
    p.add_argument("--size", type=int, default=256, help="side of the held-out photos (default 256)")
    p.add_argument("--cap", type=int, default=150, help="most Gatys iterations per photo and start")
    p.add_argument("--starts", nargs="+", default=["noise", "content"], choices=("content", "noise"),
                   help="Gatys' starts, the primary first (default: noise, the paper's protocol, then the photo)")
    p.add_argument("--sets", nargs="+", default=["Set5", "Set14", "BSD100"])
    p.add_argument("--gatys-reference", type=int, default=60,
                   help="also measure the checkerboard energy of Gatys' result after this many iterations on the "
                        "first photo, as a reference (0: skip)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.models:
        meta = read_model_metadata(path)
        print(f"== {path.name} ({meta['kind']}) on {machine_description()}")
        styles = meta.get("training", {}).get("styles")
        if meta["kind"] == "style_transfer" and styles:  # multi-style: each painting's own objective
            report = {"kind": "style_transfer", "size": args.size, "cap": args.cap, "styles": {}}
            for index, name in enumerate(styles):
                print(f" - style {index}: {name}")
                report["styles"][name] = style_report(path, args.photos, args.size, args.cap, args.starts,
                                                      args.gatys_reference, style_index=index)
                print_style_summary(report["styles"][name]["summary"], args.starts)
        elif meta["kind"] == "style_transfer":
            report = style_report(path, args.photos, args.size, args.cap, args.starts, args.gatys_reference)
            print_style_summary(report["summary"], args.starts)
        else:
            report = sr_report(path, args.sets)
            for label, rows in report["rows"].items():
                for row in rows:
                    lp = row.get("lpips")
                    print(f"   {label:8s} {row['set']:7s} x{report['scale']}: PSNR {row['psnr']:.2f}  "
                          f"SSIM {row['ssim']:.4f}  LPIPS {lp if lp is None else round(lp, 3)}")
        report |= {"model": path.name, "machine": machine_description(), "training": meta.get("training", {})}
        (args.out / f"{path.stem}.json").write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
