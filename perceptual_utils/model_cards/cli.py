"""``python -m perceptual_utils models``: list the shipped models; ``--cards`` writes their cards
(``models/README.md``); ``--ship``, ``--refresh-metadata`` and ``--gallery`` maintain ``models/`` and
write the cards after them, so a card never lags behind its model file."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..cli_options import add_command
from ..errors import CLIError
from ..shipped_models import list_models, models_dir
from .shipping import refresh_metadata, ship
from .writer import write_cards, write_gallery

#: Options that only describe the runs given with ``--ship``.
_SHIP_ONLY = ("hardware", "queue_log", "style_names", "note", "before")


def print_models() -> None:
    """One line per shipped model: name, kind and its card's one-line summary."""
    models = list_models()
    if not models:
        print(f"no model files in {models_dir()}")
        return
    width = max(len(m.name) for m in models)
    kinds = {"style_transfer": "style", "super_resolution": "SR"}
    for m in models:
        print(f"{m.name:<{width}}  {kinds.get(m.kind, m.kind):<5}  {m.summary}")
    print(f"({len(models)} models in {models_dir()}; use a name with stylize --model / upscale --model; "
          "cards: models/README.md)")


def _before_folders(args: argparse.Namespace) -> dict[str, list[Path]]:
    """``--before NAME=RUN_FOLDER`` entries by shipped NAME, oldest first."""
    before: dict[str, list[Path]] = {}
    shipped_names = {name for _, name in args.ship}
    for item in args.before:
        name, _, folder = item.partition("=")
        if not folder or name not in shipped_names:
            raise CLIError("--before: give NAME=RUN_FOLDER for a NAME shipped with --ship")
        before.setdefault(name, []).append(Path(folder))
    return before


def _run_cli(args: argparse.Namespace) -> int:
    """List the trained models in models/ (or $PERCEPTUAL_UTILS_MODELS) with their card's one-line summary.
    --cards writes models/README.md from the model files and benchmarks/results/; --ship, --refresh-metadata
    and --gallery write it too, after their own work."""
    if not args.ship:
        given = [f"--{o.replace('_', '-')}" for o in _SHIP_ONLY if getattr(args, o)]
        if given:
            raise CLIError(f"{', '.join(given)}: only with --ship RUN_FOLDER NAME")
    if not (args.cards or args.ship or args.refresh_metadata or args.gallery):
        print_models()
        return 0
    before = _before_folders(args)
    if args.refresh_metadata:
        print("metadata refreshed:", ", ".join(refresh_metadata()) or "none stale")
    for run, name in args.ship:
        print("shipped:", ship(Path(run), name, args.hardware, args.queue_log, args.style_names, args.note,
                                 before.get(name, [])))
    if args.gallery:
        print("gallery:", write_gallery())
    print("cards:", write_cards())
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``models`` to the command line."""
    p = add_command(subparsers, "models", _run_cli, help="list the shipped trained models; --cards writes their cards")
    p.add_argument("--cards", action="store_true", help="write models/README.md (every number from the files)")
    p.add_argument("--ship", nargs=2, action="append", metavar=("RUN_FOLDER", "NAME"), default=[],
                   help="copy RUN_FOLDER/model.safetensors to models/NAME.safetensors in half precision, with its "
                        "reproducing command and summary in the metadata (repeatable)")
    p.add_argument("--hardware", help="where the shipped runs trained, if their metadata does not say")
    p.add_argument("--queue-log", type=Path, help="training-queue log with start/end times per model name")
    p.add_argument("--style-names", nargs="+", help="names of a multi-style model's styles, in training order")
    p.add_argument("--note", help="what the shipped model is for (teaching models' one-line card)")
    p.add_argument("--before", action="append", default=[], metavar="NAME=RUN_FOLDER",
                   help="the run folder of an earlier, unshipped stage of the shipped NAME (its run started "
                        "from that folder's model); repeat it for several stages, oldest first")
    p.add_argument("--refresh-metadata", action="store_true",
                   help="rewrite stale reproducing commands and summaries stored in the shipped models (e.g. "
                        "after a recipe default changed, or after cpu_recipe.py measured a model again)")
    p.add_argument("--gallery", action="store_true", help="also render models/gallery.jpg")
