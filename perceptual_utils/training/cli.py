"""The options every ``train-*`` command shares, and what such a command says when it ends."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..cli_options import add_device_option, add_progress_option, add_threads_option, add_vgg_weights_option
from ..errors import CLIError
from ..model_io import load_model, save_model
from ..run_folder import LOCK_NAME, RUN_SUBFOLDERS
from ..shipped_models import list_models
from .loop import TrainResult
from .planning import AUTO_LAYOUT_MIN_STEPS
from .settings import (CHECKPOINT_NAME, FINE_TUNE_WARMUP_STEPS, INIT_FROM_NEAREST, LR_SCHEDULES, MEMORY_FORMATS,
                       RUN_FILES)


def add_training_arguments(p: Any, *, recipes: dict[str, dict[str, Any]]) -> None:
    """The options every ``train-*`` command shares.

    One place, so ``train-style`` and ``train-sr`` behave the same: ``--recipe`` picks the
    defaults (``paper`` with CUDA, ``cpu`` without) and every option given explicitly overrides
    it; re-running a command resumes from the checkpoint in ``--out`` (``--no-resume`` starts
    afresh); ``--stop-after`` and ``--time-budget`` time-box a call; ``--export`` writes a
    half-precision copy of the final model.
    """
    def show(key: str) -> str:
        return ", ".join(f"{name}: {table.get(key)}" for name, table in recipes.items())

    p.add_argument("--out", required=True, help="run folder: checkpoint, model.safetensors, previews")
    p.add_argument("--recipe", choices=tuple(recipes), help="default settings (default: paper with CUDA, else cpu)")
    p.add_argument("--steps", type=int, help=f"training iterations ({show('steps')})")
    p.add_argument("--time-budget", help="plan --steps from measured speed so the run ends in this time "
                                         "(e.g. 45s, 30m, 1.5h, 1h30m; 1h30 means 90 minutes); a resumed run "
                                         "keeps its plan")
    p.add_argument("--batch-size", type=int, help=f"images per step and process ({show('batch_size')})")
    p.add_argument("--lr", type=float, help=f"Adam learning rate ({show('lr')})")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, help=f"learning-rate schedule ({show('lr_schedule')})")
    p.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints")
    p.add_argument("--checkpoint-minutes", type=float, default=10.0,
                   help="also checkpoint when this many minutes passed since the last one, so a crash loses "
                        "at most that much work on a slow machine (default 10; 0: by steps only)")
    p.add_argument("--preview-every", type=int, default=500, help="steps between preview images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, help=f"data loading processes ({show('num_workers')})")
    add_device_option(p)
    p.add_argument("--memory-format", choices=MEMORY_FORMATS, default="auto",
                   help="tensor layout: auto (on a CPU, timed both ways for --time-budget runs and runs of "
                        f"{AUTO_LAYOUT_MIN_STEPS}+ steps; channels-last on CUDA), contiguous or channels-last")
    p.add_argument("--no-amp", action="store_true",
                   help="no mixed precision (default: bf16/fp16 on CUDA, bf16 on CPUs with native bf16)")
    p.add_argument("--no-resume", action="store_true",
                   help="start afresh, overwriting an existing checkpoint in --out (default: resume from it)")
    p.add_argument("--stop-after", type=int, help="stop (resumably) after this many steps of this call")
    p.add_argument("--export", help="also write a half-precision copy of the final model here")
    p.add_argument("--init-from", metavar="MODEL",
                   help="start from this model's weights (a path or a shipped name; same architecture) "
                        "instead of a random initialisation, e.g. x4_pixel for a feature-loss x4 network; "
                        f"train-style: {INIT_FROM_NEAREST} picks the shipped single-style network that already "
                        "scores best on the --style painting (a quick way to a new painting; see also --add-to)")
    p.add_argument("--warmup-steps", type=int, default=None, metavar="N",
                   help=f"ramp the learning rate up linearly over the first N steps (default: "
                        f"{FINE_TUNE_WARMUP_STEPS} with --init-from, else 0); softens Adam's first updates "
                        f"when fine-tuning a trained network")
    add_vgg_weights_option(p)
    add_threads_option(p)
    add_progress_option(p)


def check_export(args: Any) -> None:
    """Refuse an ``--export`` that would overwrite what the run reads or writes, before training:
    a ``--style`` painting, the ``--init-from`` model, the ``--weights``, a file in ``--data``, or the
    run folder's own files (its checkpoint: re-running could no longer resume)."""
    if not getattr(args, "export", None):
        return
    export = Path(args.export).expanduser()
    if export.is_dir():
        raise CLIError(f"--export {export}: is an existing folder; give a file name such as "
                       f"{export / 'model.safetensors'}")
    target = export.resolve()
    styles = getattr(args, "style", None) or []
    init_from = getattr(args, "init_from", None)
    inputs = [*(styles if isinstance(styles, list) else [styles]), init_from, getattr(args, "weights", None)]
    if init_from == INIT_FROM_NEAREST:  # any shipped network may be the one it starts from
        inputs += [m.path for m in list_models()]
    for source in (Path(s).expanduser() for s in inputs if s):
        if source.is_file() and source.resolve() == target:
            raise CLIError(f"--export {export}: would overwrite the input file {source}; choose another name")
    data = getattr(args, "data", None)
    if data and Path(data).is_dir() and export.exists() and Path(data).resolve() in target.parents:
        raise CLIError(f"--export {export}: would overwrite a file of the training data in {data}")
    out = Path(args.out).expanduser().resolve()
    run_file = target.parent == out and target.name in (*RUN_FILES, LOCK_NAME)
    if run_file or any(target.parent == out / sub for sub in RUN_SUBFOLDERS):
        raise CLIError(f"--export {export}: is a file the run writes into --out {args.out} (its checkpoint, model "
                       f"or history); export elsewhere, e.g. {Path(args.out) / 'export.safetensors'}")


def report_training(result: TrainResult, args: Any, kind: str) -> int:
    """After a ``train-*`` command: export the half-precision copy and say what was written."""
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    if result.model_path is None:
        # the history holds every step so far, the resumed ones included
        print(f"stopped at step {len(result.history)} of {result.steps}; run the same command again to resume "
              f"from {Path(args.out) / CHECKPOINT_NAME}")
        return 0
    if args.export:
        model = load_model(result.model_path, kind=kind)
        save_model(model, args.export, training=model.training_info, half=True)
        print(f"half-precision model: {args.export}")
    print(f"model: {result.model_path} ({result.images_per_second:.1f} images/s)")
    return 0
