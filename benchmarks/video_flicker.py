"""How much does frame-by-frame stylisation flicker? ``python benchmarks/video_flicker.py``.

Clips are filmed from the data root's content photos with a *known* camera (:mod:`perceptual_utils.flicker`:
an integer pan, a sub-pixel pan, a slow zoom, hand-held jitter), so the true motion between frames is
exact. For every shipped style model (the multi-style ``paintings`` once per painting) it reports the
temporal error: the mean ``|stylised frame t warped onto frame t+1 - stylised frame t+1|`` over the
pixels both frames see, in /255, beside

- the photos' own error (0 for the integer pan; the bilinear interpolation floor otherwise),
- ``still``: the photo stylised once and filmed along the same path, a perfectly consistent video,
  i.e. the interpolation floor of that model's texture (``stylised - still`` is the added flicker),
- per-frame Gatys (L-BFGS from each frame, a few iterations, ``starry_night``'s objective), the
  optimisation the network replaces, as a reference,
- the same models before their shift-consistency fine-tune (``--before``, default git ``2ed14bd``:
  every shipped style model was later fine-tuned from that commit's version with ``--shift-weight
  1000``; see ``models/README.md``), to see whether the fine-tune lowered flicker.

Everything runs on one thread at small frames (default 192x144, 8 frames per clip, 2 photos) so the
whole benchmark takes a few minutes. Results: ``benchmarks/results/video_flicker.json``.

No ``--temporal`` option was added to ``stylize``: a temporal blend needs the motion between frames,
which a real video does not come with (optical-flow estimates are wrong at occlusions and on moving
objects, where blending ghosts), and a blend without motion ghosts on any camera move.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from perceptual_utils.config import data_root, machine_description
from perceptual_utils.datafiles import content_photos
from perceptual_utils.flicker import MOTIONS, clip_flicker
from perceptual_utils.model_io import atomic_write, load_model
from perceptual_utils.optimization.gatys import gatys_style_transfer
from perceptual_utils.images import load_image
from perceptual_utils.shipped_models import list_models
from perceptual_utils.style.stylize import prepare_model, style_names
from perceptual_utils.style.stylize import stylize_frames

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def configurations(paths: dict[str, Path]) -> list[tuple[str, Path, str | None]]:
    """``(label, model file, style)`` for each single-style model and each style of a multi-style one."""
    out = []
    for name, path in paths.items():
        styles = style_names(load_model(path, kind="style_transfer"))
        if len(styles) > 1:
            out += [(f"{name}/{style}", path, style) for style in styles]
        else:
            out.append((name, path, None))
    return out


def models_at(revision: str, names: list[str], folder: Path) -> dict[str, Path]:
    """The shipped models' files as of git ``revision`` (read with ``git show``), written to ``folder``."""
    out = {}
    for name in names:
        target = folder / f"{name}.safetensors"
        blob = subprocess.run(["git", "show", f"{revision}:models/{name}.safetensors"], cwd=ROOT,
                              capture_output=True, check=True).stdout
        target.write_bytes(blob)
        out[name] = target
    return out


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def averaged(per_photo: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per motion and measure, the mean over photos."""
    return {m: {k: mean(p[m][k] for p in per_photo) for k in per_photo[0][m]} for m in per_photo[0]}


def measure(stylise, photos, args) -> dict:
    per_photo = [clip_flicker(stylise, p, frames=args.frames, size=(args.height, args.width)) for p in photos]
    motions = averaged(per_photo)
    return {"motions": motions,
            "mean": {k: mean(v[k] for v in motions.values()) for k in ("photo", "stylised", "still")}}


def gatys_stylise(style_image: torch.Tensor, info: dict, iterations: int):
    """Per-frame Gatys with the network's objective (weights, style size), from each frame."""
    def run(frames: torch.Tensor) -> torch.Tensor:
        return torch.stack([gatys_style_transfer(
            f, style_image, content_weight=info["content_weight"], style_weight=info["style_weight"],
            tv_weight=info["tv_weight"], style_size=info.get("style_size"), iterations=iterations,
            progress=False).image for f in frames])
    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=192)
    p.add_argument("--height", type=int, default=144)
    p.add_argument("--frames", type=int, default=8, help="frames per clip")
    p.add_argument("--photos", type=int, default=2, help="content photos (clips per motion)")
    p.add_argument("--gatys-iterations", type=int, default=10)
    p.add_argument("--gatys-frames", type=int, default=4, help="frames per clip for Gatys (on the first photo)")
    p.add_argument("--before", default="2ed14bd",
                   help="git revision of the models before the shift-consistency fine-tune ('' to skip)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS / "video_flicker.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    t0, cpu0 = time.perf_counter(), time.process_time()
    photos = content_photos(args.photos)
    shipped = {m.name: m.path for m in list_models("style_transfer")}
    report = {"machine": machine_description(args.threads), "frame_size": [args.width, args.height],
              "frames": args.frames, "photos": args.photos, "motions": list(MOTIONS), "unit": "/255",
              "models": {}, "before": {}, "before_revision": args.before or None}

    def run_models(paths: dict[str, Path], into: dict) -> None:
        for label, path, style in configurations(paths):
            net = prepare_model(path)
            row = measure(lambda frames: stylize_frames(net, frames, style=style), photos, args)
            row["shift_weight"] = float(net.training_info.get("shift_weight") or 0.0)
            into[label] = row
            print(f"  {label:<28} {row['mean']['stylised']:6.2f} (still {row['mean']['still']:.2f})", flush=True)

    print("shipped models:", flush=True)
    run_models(shipped, report["models"])
    if args.before:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"before the shift-consistency fine-tune (git {args.before}):", flush=True)
            run_models(models_at(args.before, list(shipped), Path(tmp)), report["before"])

    info = load_model(shipped["starry_night"], kind="style_transfer").training_info
    style_image = load_image(data_root() / "styles" / Path(info["style"]).name)
    gatys_args = argparse.Namespace(**{**vars(args), "frames": args.gatys_frames})
    report["gatys"] = {"style": "starry_night", "iterations": args.gatys_iterations, "frames": args.gatys_frames,
                       "photos": 1, **measure(gatys_stylise(style_image, info, args.gatys_iterations), photos[:1],
                                              gatys_args)}
    # CPU seconds too: on a shared machine the wall clock counts the other processes' work
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["cpu_seconds"] = round(time.process_time() - cpu0, 1)
    atomic_write(args.out, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=2) + "\n"))
    print_table(report)
    print(f"{report['seconds']:.0f} s ({report['cpu_seconds']:.0f} s of CPU); wrote {args.out}")


def print_table(report: dict) -> None:
    motions = report["motions"]
    head = "".join(f"{m:>13}" for m in motions)
    w, h = report["frame_size"]
    print(f"\ntemporal error (/255), {w}x{h} px, {report['frames']} frames x {report['photos']} photos per motion; "
          f"stylised (still = the consistent floor)")
    print(f"{'':<30}{head}{'mean':>13}{'before':>9}")
    some = next(iter(report["models"].values()))
    print(f"{'photos':<30}" + "".join(f"{some['motions'][m]['photo']:13.2f}" for m in motions)
          + f"{some['mean']['photo']:13.2f}")
    for label, row in report["models"].items():
        before = report["before"].get(label)
        cells = "".join(f"{row['motions'][m]['stylised']:7.2f} ({row['motions'][m]['still']:.1f})" for m in motions)
        print(f"{label:<30}{cells}{row['mean']['stylised']:13.2f}"
              + (f"{before['mean']['stylised']:9.2f}" if before else ""))
    g = report["gatys"]
    cells = "".join(f"{g['motions'][m]['stylised']:7.2f} ({g['motions'][m]['still']:.1f})" for m in motions)
    print(f"{'Gatys per frame (' + str(g['iterations']) + ' it.)':<30}{cells}{g['mean']['stylised']:13.2f}")
    if report["before"]:
        pairs = [(r["mean"]["stylised"], report["before"][k]["mean"]["stylised"])
                 for k, r in report["models"].items() if k in report["before"]]
        lower = sum(a < b for a, b in pairs)
        print(f"\nshift-consistency fine-tuned vs before: lower flicker for {lower} of {len(pairs)}; "
              f"mean {mean(a for a, _ in pairs):.2f} vs {mean(b for _, b in pairs):.2f}")


if __name__ == "__main__":
    main()
