"""``models/README.md``: the cards of every model file in ``models/``, generated, never typed
(``python -m perceptual_utils models --cards``); and ``models/gallery.jpg``."""
from __future__ import annotations

from pathlib import Path

import torch

from ..datafiles import content_photos
from ..images import save_image
from ..model_io import atomic_write, read_model_metadata
from ..shipped_models import list_models, models_dir
from ..style.stylize import prepare_model, stylize
from .lineage import trained_minutes
from .results import read_report
from .sr_cards import sr_card
from .style_cards import multi_style_card, style_card


def render_cards(folder: Path | None = None) -> str:
    """The text of ``models/README.md`` for the model files in ``folder`` (default :func:`models_dir`):
    an introduction, then a card for each style model, each super-resolution model and each teaching
    model, with the measurements of ``benchmarks/results/`` (:mod:`.results`)."""
    folder = models_dir() if folder is None else folder
    out = ["# Shipped models", "",
           "Trained by us on a CPU with the package's CPU recipe, on the 239-photo COCO sample (never on the demo",
           "photos in `data/content/`, which are the held-out photos of the style measurements). Each file is one",
           "half-precision `.safetensors` with its architecture and training settings in the metadata;",
           "`python -m perceptual_utils models` lists them, `stylize --model NAME` / `upscale --model NAME` use them.",
           "Measurements: `python benchmarks/cpu_recipe.py models/*.safetensors` (raw output in",
           "`benchmarks/results/cpu_recipe/`); this page is generated from those files by "
           "`python -m perceptual_utils models --cards`.",
           "", "How to read the style numbers: *Gatys-equivalent iterations* is how many L-BFGS iterations of Gatys'",
           "method, with the same objective, reach the network's objective on a held-out photo (the paper's Fig. 5).",
           "The paper's protocol, and the number that counts here, starts Gatys from white noise with the pixels",
           "clipped at every iteration; the count from the photo itself (an extra, beside it) is far smaller.",
           "The paper's networks (40k steps on a GPU) match 50-100. Ours had minutes on one CPU core.",
           "*Flat-bright area* is the share of the outputs covered by smooth bright patches without brush strokes,",
           "where short instance-norm training leaves its blobs; a plain bright sky counts too, so it compares",
           "models (and stages of one model) on the same photos rather than meeting a bar.", ""]
    files = sorted(folder.glob("*.safetensors"))
    for kind, title, card in (("style_transfer", "## Style transfer", style_card),
                              ("super_resolution", "## Super-resolution", sr_card)):
        out += [title, ""]
        for path in files:
            meta = read_model_metadata(path)
            if meta["kind"] != kind:
                continue
            report = read_report(path.stem)
            multi = kind == "style_transfer" and meta.get("training", {}).get("styles")
            if kind == "style_transfer":  # style cards also look up the blob measure of these weights
                out += (multi_style_card if multi else style_card)(path.stem, meta, report, path)
            else:
                out += card(path.stem, meta, report)
            out.append(f"File size: {path.stat().st_size / 1e6:.1f} MB.")
            out.append("")
    teaching = sorted((folder / "teaching").glob("*.safetensors"))
    if teaching:
        out += ["## Teaching models", "",
                "Not listed by `models` and not meant for use: networks a notebook compares against the shipped ones.", ""]
        for path in teaching:
            t = read_model_metadata(path)["training"]
            out += [f"- `teaching/{path.name}`: {t.get('note', '')} {t.get('steps_done')} steps, {trained_minutes(t)} on "
                    f"{t.get('hardware', 'a CPU')}; {path.stat().st_size / 1e6:.1f} MB.".replace(":  ", ": ")]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def write_cards() -> Path:
    """Write :func:`render_cards` to ``models/README.md`` atomically (a failed run leaves the old cards)."""
    text = render_cards()
    return atomic_write(models_dir() / "README.md", lambda tmp: Path(tmp).write_text(text))


def write_gallery(size: int = 256) -> Path:
    """``models/gallery.jpg``: each held-out demo photo, then every shipped style model's output."""
    styles = [prepare_model(m.path) for m in list_models("style_transfer")
              if not read_model_metadata(m.path).get("training", {}).get("styles")]  # one painting per column
    rows = []
    for photo in content_photos(4, size):
        rows.append(torch.cat([photo] + [stylize(net, photo) for net in styles], dim=-1))
    return save_image(torch.cat(rows, dim=-2), models_dir() / "gallery.jpg", quality=88)
