"""Smooth bright blobs in stylised photos: ``python benchmarks/blob_area.py [MODEL...]``.

For every style of every model (a multi-style network counts once per painting), the
:func:`~perceptual_utils.style.evaluation.flat_bright_area` of its output on each held-out photo
(256 px): the share of the picture that is a bright patch without brush strokes, where short
instance-norm training leaves its blobs. Neither the objective nor the checkerboard energy sees them,
which is how a ``paintings`` stage that measured better on both came close to shipping with a pale
blob in every painting's sky (``benchmarks/results/paintings_stage3.json``).

Default models: every shipped style model. Run folders work too (their ``model.safetensors``).
``--picture F`` also draws each output beside the same output with the counted pixels in magenta.
Results: ``benchmarks/results/blob_area.json``, each model's numbers with the digest of the weights
they were measured on; ``python -m perceptual_utils models --cards`` puts them on the cards of models whose weights match.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from perceptual_utils.config import machine_description
from perceptual_utils.datafiles import content_photos
from perceptual_utils.images import save_image
from perceptual_utils.model_io import atomic_write, load_model, stored_digest
from perceptual_utils.shipped_models import list_models
from perceptual_utils.style.evaluation import flat_bright_mask
from perceptual_utils.style.stylize import style_names, stylize

RESULTS = Path(__file__).resolve().parent / "results"
MAGENTA = torch.tensor([1.0, 0.0, 1.0]).view(3, 1, 1)


def model_name(path: Path) -> str:
    return path.parent.name if path.name == "model.safetensors" else path.stem


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", type=Path, help="model files or run folders (default: the shipped style models)")
    p.add_argument("--photos", type=int, default=4)
    p.add_argument("--out", type=Path, default=RESULTS / "blob_area.json")
    p.add_argument("--picture", type=Path, help="also save outputs and their counted pixels here (.jpg/.png)")
    args = p.parse_args()
    paths = [m / "model.safetensors" if m.is_dir() else m for m in args.models] or \
        [m.path for m in list_models("style_transfer")]
    photos = content_photos(args.photos, 256)
    report = {"machine": machine_description(), "photos": args.photos, "size": 256, "models": {}}
    rows = []
    t0 = time.perf_counter()
    for path in paths:
        net = load_model(path, kind="style_transfer").float().eval()
        names = style_names(net) or [f"style {i}" for i in range(int(getattr(net, "num_styles", 1)))]
        multi = int(getattr(net, "num_styles", 1)) > 1
        entry = {"tensor_sha256": stored_digest(path)}  # which weights these numbers belong to
        for index, style in enumerate(names):
            areas = []
            for photo in photos:
                with torch.no_grad():
                    out = stylize(net, photo, style=index if multi else None)
                mask = flat_bright_mask(out)
                areas.append(float(mask.float().mean()))
                if args.picture:
                    rows.append(torch.cat([out, torch.where(mask, MAGENTA, out)], 2))
            entry[style] = {"mean": sum(areas) / len(areas), "per_photo": [round(a, 4) for a in areas]}
            print(f"{model_name(path):<26} {style:<18} flat-bright area {100 * entry[style]['mean']:5.2f}% "
                  f"(per photo {' / '.join(f'{100 * a:.2f}' for a in areas)})", flush=True)
        report["models"][model_name(path)] = entry
    report["seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write(args.out, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=2)))
    print(f"wrote {args.out}")
    if args.picture:  # one row per (model, style): each photo's output, then the same with the mask
        per_row = len(photos)
        grid = torch.cat([torch.cat(rows[i:i + per_row], 2) for i in range(0, len(rows), per_row)], 1)
        save_image(grid, args.picture)
        print(f"wrote {args.picture}")


if __name__ == "__main__":
    main()
