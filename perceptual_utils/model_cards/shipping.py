"""Ship a trained model: copy a run's model into ``models/`` in half precision with its reproducing
command, lineage and one-line summary in the metadata; and refresh those where they went stale."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import CLIError
from ..model_io import atomic_write, load_model, read_model_metadata, replace_training_info, save_model
from ..shipped_models import models_dir
from .commands import command_for
from .lineage import fine_tune_lineage
from .results import RESULTS, read_report, report_summary


def queue_wall_seconds(log: Path | None, name: str) -> float | None:
    """Wall time of ``name`` from a training-queue log with lines ``== NAME start HH:MM:SS`` and
    ``== NAME end HH:MM:SS`` (for runs made before the loop recorded its own time)."""
    if log is None or not log.is_file():
        return None
    times = {}
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "==" and parts[1] == name and parts[2] in ("start", "end"):
            h, m, sec = map(int, parts[3].split(":"))
            times[parts[2]] = 3600 * h + 60 * m + sec
    if {"start", "end"} <= set(times):
        return float((times["end"] - times["start"]) % 86400)
    return None


def ship(run: Path, name: str, hardware: str | None = None, queue_log: Path | None = None,
         style_names: list[str] | None = None, note: str | None = None,
         before: list[Path] | tuple[Path, ...] = ()) -> Path:
    """Copy ``run/model.safetensors`` to ``models/NAME.safetensors`` in half precision, with its
    reproducing command, its lineage (:func:`~.lineage.fine_tune_lineage`, ``before``: the run folders
    of its earlier unshipped stages, oldest first), its one-line summary when ``benchmarks/cpu_recipe.py``
    has measured it, and the ``hardware``, ``style_names`` and ``note`` given; returns the new file.

    Raises:
        CLIError: ``style_names`` that do not match the styles, or stages that do not chain.
    """
    model = load_model(run / "model.safetensors")
    info = dict(model.training_info)
    if info.get("init_from"):
        fine_tune_lineage(name, info, before)
    if style_names:  # what users type after --style (the run recorded the image file stems)
        if len(style_names) != len(info.get("styles", [])):
            raise CLIError(f"--style-names: {len(style_names)} names for {len(info.get('styles', []))} styles")
        info["styles"] = list(style_names)
        info["run_name"] = name
    if "train_seconds" not in info:
        wall = queue_wall_seconds(queue_log, name)
        if wall is not None:
            info["train_seconds"] = wall  # includes loading and the speed measurement of --time-budget
    if hardware and ("hardware" not in info or info["hardware"].endswith(" threads")):
        info["hardware"] = hardware  # more than the loop's own "x86_64 CPU, N threads"
    info["command"] = command_for(info)
    if note:
        info["note"] = note
    report = read_report(name)
    if report is not None:
        info["summary"] = report_summary(report)
    dest = models_dir() / f"{name}.safetensors"  # a name like teaching/NAME ships into a subfolder
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, dest, training=info, half=True)
    return dest


def refresh_metadata() -> list[str]:
    """Rewrite the stored reproducing command and one-line summary of every shipped model where they
    have gone stale (a recipe default changed since it shipped; ``benchmarks/cpu_recipe.py`` measured
    it again after shipping); the tensors and their digest stay as they are."""
    changed = []
    for path in sorted(models_dir().rglob("*.safetensors")):
        training = read_model_metadata(path).get("training", {})
        data = read_report(path.stem)  # its measurements echo the metadata they were made with
        stale = "command" in training and training["command"] != command_for(training)
        if stale:
            training["command"] = command_for(training)
        if data is not None and "summary" in training:
            summary = report_summary(data)
            stale, training["summary"] = stale or summary != training["summary"], summary
        if stale:
            replace_training_info(path, training)
            changed.append(path.name)
        if data is not None and data.get("training", {}).get("command") not in (None, training.get("command")):
            data["training"]["command"] = training["command"]
            text = json.dumps(data, indent=2)  # as cpu_recipe.py writes it
            atomic_write(RESULTS / f"{path.stem}.json", lambda tmp: Path(tmp).write_text(text))
    return changed
