"""Three ways to a new painting, measured: ``python benchmarks/new_style.py RUN_FOLDER...``.

The run folders come from ``benchmarks/new_style_runs.py``, one per way and painting: (a) from
scratch with the cpu recipe, (b) a fine-tune of a shipped single-style network (``--init-from``),
(c) a new style slot in the shipped ``paintings`` network (``train-style --add-to``). Each run
saved its network at several elapsed training times (``model_<M>min.safetensors``), so one run
gives the whole curve.

For every saved network, on the 4 held-out photos at 256 px (``content_photos``, never trained on):

- *Gatys-equivalent iterations* from white noise, the paper's protocol (Fig. 5 of Johnson et al.;
  Gatys et al. start from noise, and our L-BFGS clips the pixels at every iteration), and from the
  photo as a labelled extra (:mod:`perceptual_utils.style.evaluation`). The Gatys curves depend on
  the objective and the photo only, and all three ways train the same objective (the cpu recipe's
  weights, the painting at 384 px), so each painting's curves are computed once (``--cap``
  iterations from noise, ``--photo-cap`` from the photo) and every network is read off them;
- the checkerboard energy of the output relative to the photo's own (1.0: none added), and, as a
  yardstick of how much of it the painting's own texture asks for, that of Gatys' image from noise;
- the flat-bright and flat-dark areas (:func:`~perceptual_utils.style.evaluation.flat_bright_area`,
  :func:`~perceptual_utils.style.evaluation.flat_dark_area`): the blob measures, one for the white
  patches short training from scratch paints, one for the black ones of a fine-tune at a high rate.

Results: ``benchmarks/results/new_style.json`` and a picture grid ``benchmarks/results/new_style.jpg``
(per painting: the photo, Gatys from noise after ``--grid-gatys`` iterations, then each way's last network).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
import time
from pathlib import Path

import torch

from perceptual_utils.config import machine_description
from perceptual_utils.datafiles import content_photos
from perceptual_utils.images import load_image, save_image
from perceptual_utils.model_io import atomic_write, load_model
from perceptual_utils.style.evaluation import (flat_bright_area, flat_dark_area, gatys_with_objective,
                                               style_objective)
from perceptual_utils.style.net import checkerboard_ratio
from perceptual_utils.style.add_style import ADD_TO_LR
from perceptual_utils.style.stylize import style_names, stylize
from perceptual_utils.style.training import STYLE_RECIPES

RESULTS = Path(__file__).resolve().parent / "results"
SIZE = 256


def reached(curve: list[float], value: float) -> int | None:
    """First iteration ``k`` (``curve[k]``: objective after k L-BFGS iterations) at or below ``value``."""
    return next((k for k, v in enumerate(curve) if v <= value), None)


def median(values: list[int | None], cap: int) -> float:
    return float(statistics.median(cap if v is None else v for v in values))


def gatys_curves(objective, style: torch.Tensor, photos: list[torch.Tensor], caps: dict[str, int], grid_at: int,
                 cache: Path, only: list[int] | None = None) -> tuple[dict[str, list[list[float]]], list[torch.Tensor]]:
    """Per photo, Gatys' objective after each iteration from noise (seed 0, as
    :func:`~perceptual_utils.style.evaluation.gatys_iterations_to_reach`) and from the photo, and
    the noise start's image after ``grid_at`` iterations (for the grid). Kept per photo under
    ``cache`` (``<i>.json``, ``<i>.png``), so that adding runs, or a second process computing other
    photos (``only``), does not recompute them."""
    curves: dict[str, list[list[float]]] = {"noise": [], "content": []}
    images = []
    for i, photo in enumerate(photos):
        entry, picture = cache / f"{i}.json", cache / f"{i}.png"
        saved = json.loads(entry.read_text()) if entry.is_file() else None
        fits = saved is not None and saved["caps"]["noise"] >= caps["noise"] and \
            saved["caps"]["content"] >= caps["content"] and saved["grid_at"] == grid_at
        if not fits and (only is None or i in only):
            noise = torch.rand(photo.shape, generator=torch.Generator().manual_seed(0))
            run = gatys_with_objective(photo, style, objective, caps["noise"], init=noise, frames_at=[grid_at])
            saved = {"caps": caps, "grid_at": grid_at, "noise": run.history["total"],
                     "content": gatys_with_objective(photo, style, objective, caps["content"]).history["total"]}
            save_image(run.frames[grid_at], picture)
            atomic_write(entry, lambda tmp: Path(tmp).write_text(json.dumps(saved)))
        if saved is None:
            continue
        curves["noise"].append(saved["noise"])
        curves["content"].append(saved["content"])
        images.append(load_image(picture))
    return curves, images


def cached_score(path: Path, cache: Path, *args) -> dict:
    """:func:`score`, kept in ``cache/scores/`` under the file's digest and the caps, so that scoring
    again with more run folders only scores the networks not scored before."""
    key = hashlib.sha256(path.read_bytes() + json.dumps(args[-1], sort_keys=True).encode()).hexdigest()[:24]
    entry = cache / "scores" / f"{key}.json"
    if entry.is_file():
        return json.loads(entry.read_text())
    result = score(path, *args)
    entry.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(entry, lambda tmp: Path(tmp).write_text(json.dumps(result)))
    return result


def score(path: Path, photos: list[torch.Tensor], curves, objective, index: int | None, caps: dict[str, int]) -> dict:
    """One saved network: objective, Gatys-equivalent iterations (both starts), checkerboard, blobs."""
    net = load_model(path, kind="style_transfer").float().eval()
    info = net.training_info
    rows = []
    for i, photo in enumerate(photos):
        out = stylize(net, photo, style=index)
        with torch.no_grad():
            value = float(objective(out[None], content=photo[None])["total"])
        rows.append({"objective": value,
                     "gatys_noise": reached(curves["noise"][i], value),
                     "gatys_photo": reached(curves["content"][i], value),
                     "checkerboard_ratio": checkerboard_ratio(out, photo),
                     "flat_bright_area": flat_bright_area(out), "flat_dark_area": flat_dark_area(out)})
    return {"steps": info.get("steps_done"), "train_seconds": info.get("train_seconds"),
            "objective_mean": statistics.fmean(r["objective"] for r in rows),
            "gatys_noise_median": median([r["gatys_noise"] for r in rows], caps["noise"]),
            "gatys_noise_capped": any(r["gatys_noise"] is None for r in rows),
            "gatys_photo_median": median([r["gatys_photo"] for r in rows], caps["content"]),
            "gatys_photo_capped": any(r["gatys_photo"] is None for r in rows),
            "checkerboard_ratio_mean": statistics.fmean(r["checkerboard_ratio"] for r in rows),
            "flat_bright_area_mean": statistics.fmean(r["flat_bright_area"] for r in rows),
            "flat_dark_area_mean": statistics.fmean(r["flat_dark_area"] for r in rows),
            "per_photo": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders of benchmarks/new_style_runs.py")
    p.add_argument("--cap", type=int, default=30, help="Gatys iterations from noise (default 30: the target is 25)")
    p.add_argument("--photo-cap", type=int, default=10, help="Gatys iterations from the photo (default 10)")
    p.add_argument("--curves-only", type=int, nargs="+", metavar="I",
                   help="only compute (and cache) the Gatys curves of these photos (0-3) for the painting files given "
                        "instead of run folders (e.g. while the runs train)")
    p.add_argument("--grid-gatys", type=int, default=30, help="Gatys (noise) iterations shown in the grid")
    p.add_argument("--cache", type=Path, default=Path("runs/new_style_curves"),
                   help="folder for the Gatys curves and the scores")
    p.add_argument("--out", type=Path, default=RESULTS / "new_style.json")
    p.add_argument("--grid", type=Path, default=RESULTS / "new_style.jpg")
    args = p.parse_args()
    photos = content_photos(4, SIZE)
    caps = {"noise": args.cap, "content": args.photo_cap}
    report = {"machine": machine_description(), "threads": torch.get_num_threads(), "size": SIZE, "photos": 4,
              "caps": caps, "paintings": {}}
    t0 = time.perf_counter()
    pictures: dict[str, list[torch.Tensor]] = {}
    if args.curves_only:  # the positional arguments are painting files; the objective is the cpu recipe's
        for painting in args.runs:
            objective, style = style_objective({"style": str(painting), "style_size": 384, "content_weight": 1.0,
                                                "style_weight": 2.0, "tv_weight": 1.0})
            (args.cache / painting.stem).mkdir(parents=True, exist_ok=True)
            gatys_curves(objective, style, photos, caps, args.grid_gatys, args.cache / painting.stem, args.curves_only)
        print(f"Gatys curves of photos {args.curves_only} cached in {args.cache}")
        return
    for run in args.runs:
        models = sorted(run.glob("model_*min.safetensors"), key=lambda f: float(re.findall(r"[\d.]+", f.name)[0]))
        if not models:
            raise SystemExit(f"error: {run}: no model_<M>min.safetensors (a run of benchmarks/new_style_runs.py)")
        first = load_model(models[0], kind="style_transfer")
        info = first.training_info
        multi = int(getattr(first, "num_styles", 1)) > 1
        painting = info["styles"][-1] if multi else info["style_name"]  # an added style is the last
        index = style_names(first).index(painting) if multi else None
        objective, style = style_objective(info, style_index=index)
        (args.cache / painting).mkdir(parents=True, exist_ok=True)
        curves, gatys_images = gatys_curves(objective, style, photos, caps, args.grid_gatys, args.cache / painting,
                                            None)
        # log.json is written at the end of a run; an unfinished run's saved networks count too
        log = json.loads((run / "log.json").read_text()) if (run / "log.json").is_file() else {}
        entry = report["paintings"].setdefault(painting, {"ways": {}})
        if "gatys_noise_marks" not in entry:
            entry["gatys_noise_marks"] = {k: statistics.fmean(c[k] for c in curves["noise"])
                                          for k in (10, 17, 25, 30, 50) if k <= args.cap}
            # the yardstick's own texture: Gatys from noise after --grid-gatys iterations, measured like a network
            entry["gatys_noise_image"] = {
                "iterations": args.grid_gatys,
                "checkerboard_ratio_mean": statistics.fmean(checkerboard_ratio(g, ph)
                                                            for g, ph in zip(gatys_images, photos)),
                "flat_bright_area_mean": statistics.fmean(flat_bright_area(g) for g in gatys_images),
                "flat_dark_area_mean": statistics.fmean(flat_dark_area(g) for g in gatys_images)}
            g = entry["gatys_noise_image"]
            print(f"{painting:24s} Gatys from noise, {args.grid_gatys} iterations: checkerboard "
                  f"{g['checkerboard_ratio_mean']:.2f}x, flat-bright {100 * g['flat_bright_area_mean']:.2f}%, "
                  f"flat-dark {100 * g['flat_dark_area_mean']:.2f}%", flush=True)
            entry["photo_objective_mean"] = statistics.fmean(c[0] for c in curves["content"])
            # the blob measures of the photos themselves (a night sky is flat and dark by nature)
            entry["photos_flat_bright_area_mean"] = statistics.fmean(flat_bright_area(ph) for ph in photos)
            entry["photos_flat_dark_area_mean"] = statistics.fmean(flat_dark_area(ph) for ph in photos)
        name = info.get("way", run.name)
        default_lr = ADD_TO_LR if name.startswith("add-to") else STYLE_RECIPES["cpu"]["lr"]
        if info.get("lr", default_lr) != default_lr:  # a learning-rate variant of a way
            name += f", lr {info['lr']:g}"
        if "norm_lr" in info:  # a fine-tune whose instance norms learn at a rate of their own
            name += f", norms at {info['norm_lr']:g}"
        if info.get("trainable", "all") != "all":  # a fine-tune of only some weights, the rest frozen
            name += f", only {info['trainable']}"
        if info.get("run_minutes", 10) != 10:  # a longer schedule: its own curve
            name += f", {info['run_minutes']:g}-minute schedule"
        # a train-style run's model file (renamed model_<M>min) ran on the wall clock of its --time-budget
        clock = info.get("clock") or (f"wall time, train-style --time-budget {info['time_budget']}"
                                      if "time_budget" in info else "process CPU time, 1 thread")
        way = {"way": name, "run": str(run), "clock": clock,
               "step_seconds_mean": log.get("step_seconds_mean"), "checkpoints": {}}
        for path in models:
            minutes = re.findall(r"[\d.]+", path.name)[0]
            way["checkpoints"][minutes] = s = cached_score(path, args.cache / painting, photos, curves, objective,
                                                            index, caps)
            print(f"{painting:24s} {name:24s} {minutes:>4s} min {s['steps']:5d} steps: objective "
                  f"{s['objective_mean']:6.2f}, Gatys-eq noise {s['gatys_noise_median']:5.1f} photo "
                  f"{s['gatys_photo_median']:4.1f}, checkerboard {s['checkerboard_ratio_mean']:.2f}x, "
                  f"flat-bright {100 * s['flat_bright_area_mean']:.2f}%, "
                  f"flat-dark {100 * s['flat_dark_area_mean']:.2f}%", flush=True)
        entry["ways"][name] = way
        last = load_model(models[-1], kind="style_transfer").float().eval()
        row = pictures.setdefault(painting, [torch.cat(photos, -1)])
        labels = report.setdefault("grid_rows", {}).setdefault(painting, ["held-out photos"])
        if len(row) == 1:
            row.append(torch.cat(gatys_images, -1))
            labels.append(f"Gatys from noise, {args.grid_gatys} iterations")
        labels.append(f"{name}, {minutes} min")  # the last saved network
        row.append(torch.cat([stylize(last, ph, style=index) for ph in photos], -1))
    clocks = {w["clock"] for e in report["paintings"].values() for w in e["ways"].values()}
    # steps x their seconds measured on 2 idle cores, or a train-style run's wall time there
    report["clock_axis"] = ("2 idle cores" if all(c.startswith(("steps", "wall")) for c in clocks)
                            else "; ".join(sorted(clocks)))
    report["seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write(args.out, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=1)))
    grid = torch.cat([torch.cat(rows, -2) for rows in pictures.values()], -2)
    save_image(grid, args.grid)
    print(f"wrote {args.out} and {args.grid} ({report['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
