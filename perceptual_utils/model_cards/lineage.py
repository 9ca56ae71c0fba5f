"""Where a shipped model's training began, for its card: the models it was fine-tuned from (found
by weights digest in the git history of ``models/``), its earlier unshipped stages, and the whole
training time they add up to.

Model files are read only through :mod:`perceptual_utils.model_io`. The digests compared here are
:func:`~perceptual_utils.model_io.tensors_digest` of the weights as ``load_model`` returns them
(float32), which is what a run started with ``--init-from`` records as ``init_from_digest``.
"""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from ..errors import CLIError
from ..model_io import load_model, tensors_digest
from ..shipped_models import models_dir
from .commands import command_for


def trained_minutes(info: dict) -> str:
    """"N min" of a training info's own wall time (its earlier stages and models not included)."""
    seconds = info.get("train_seconds")
    return f"{seconds / 60:.0f} min" if seconds else "see the command's --time-budget"


def shipped_commit(name: str, digest: str) -> tuple[str, dict] | None:
    """``(commit, training info)`` of the newest committed ``models/NAME.safetensors`` whose weights
    have ``digest`` (a fine-tune's ``init_from_digest``), or ``None``: the model a fine-tune started
    from, found even when a later fine-tune of it has replaced it in ``models/`` since."""
    shipped = models_dir() / f"{name}.safetensors"  # a name like teaching/NAME lies in a subfolder
    folder, file = shipped.parent, shipped.name
    commits = subprocess.run(["git", "log", "--format=%h", "--", file], capture_output=True, text=True,
                             cwd=folder, check=True).stdout.split()
    for commit in commits:
        blob = subprocess.run(["git", "show", f"{commit}:./{file}"], capture_output=True, cwd=folder)
        if blob.returncode:  # the commit removed the file
            continue
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / file
            path.write_bytes(blob.stdout)
            old = load_model(path)
        if tensors_digest(old.state_dict()) == digest:
            return commit, old.training_info
    return None


def lineage_entry(name: str, commit: str, t: dict) -> dict:
    """One earlier model of a card's lineage: its shipped name, git commit, and from its training info
    ``t`` the steps, time and precision the card names and adds up, with the steps and time of its own
    earlier stages (a model shipped as a run resumed from an unshipped one) when it had some."""
    entry = {"name": name, "commit": commit, **{k: t.get(k) for k in ("steps_done", "train_seconds", "precision")}}
    if t.get("stages"):
        entry["stages"] = [{k: st.get(k) for k in ("steps_done", "train_seconds")} for st in t["stages"]]
    return entry


def lineage_seconds(entry: dict) -> float:
    """Training seconds of a model (a lineage entry or a training info), its own earlier stages included."""
    return (entry.get("train_seconds") or 0) + sum(st.get("train_seconds") or 0 for st in entry.get("stages", []))


def stage_text(stage: dict) -> str:
    """"N steps in M min" of one earlier training stage."""
    return f"{stage['steps_done']} steps in {(stage['train_seconds'] or 0) / 60:.0f} min"


def describe_entry(entry: dict) -> str:
    """"git COMMIT: N steps, M min, PRECISION[, after an earlier stage of ...]" for a lineage entry."""
    text = f"git {entry['commit']}: {entry['steps_done']} steps, {(entry['train_seconds'] or 0) / 60:.0f} min, " \
           f"{entry['precision']}"
    for stage in entry.get("stages", []):
        text += f", after an earlier stage of {stage_text(stage)}"
    return text


def earlier_fine_tunes(t: dict) -> list[dict]:
    """The shipped models that ``t`` (a shipped model's training info) was itself fine-tuned from,
    nearest first (git commit, steps, time, precision): a fine-tune of a fine-tune names them all,
    so its card can add up the whole training time."""
    origin = t.get("fine_tune_of")
    if not origin:
        return []
    return [lineage_entry(origin.get("name"), origin.get("commit"), origin)] + list(origin.get("ancestors", []))


def started_from_another(t: dict) -> list[dict]:
    """``[the shipped model]`` that ``t`` (a shipped model's training info, not itself a fine-tune of
    its own name) started from under another name, e.g. ``x8_feature`` from ``x8_pixel``, found by
    weights digest in git; else ``[]``. An ``--init-from`` that named a copy of a shipped model is
    traced to it by digest (:func:`shipped_name_for`)."""
    if t.get("fine_tune_of") or not t.get("init_from") or not t.get("init_from_digest"):
        return []
    name = Path(t["init_from"]).stem
    if not (models_dir() / f"{name}.safetensors").is_file():
        name = shipped_name_for(t["init_from_digest"])
        if name is None:
            return []
    found = shipped_commit(name, t["init_from_digest"])
    if found is None:
        return []
    return [lineage_entry(name, *found)]


def shipped_name_for(digest: str) -> str | None:
    """The name of the model in ``models/`` whose loaded weights have ``digest`` (a run's
    ``init_from_digest``, taken as :func:`shipped_commit` takes it), or ``None``: which shipped model a
    run started from when its ``--init-from`` named a copy of it."""
    for path in sorted(models_dir().rglob("*.safetensors")):
        if tensors_digest(load_model(path).state_dict()) == digest:
            return path.relative_to(models_dir()).with_suffix("").as_posix()
    return None


def fine_tune_lineage(name: str, info: dict, before: list[Path] | tuple[Path, ...] = ()) -> None:
    """Record in ``info`` (a fine-tune's training info) where it started.

    ``before``: the run folders of its earlier, unshipped stages, oldest first; each stage's run
    started from the model of the folder before it (checked by weights digest), and the last one is
    where this run started. Their commands, steps and times go into ``stages``.

    Where the first stage started: a model once shipped as ``name`` (found by weights digest in the
    git history of ``models/NAME.safetensors``) becomes ``fine_tune_of`` (git commit, its steps, time
    and command); a model shipped under another name (``x8_feature`` from ``x8_pixel``, found by
    digest among today's ``models/``) becomes ``started_from``, and the first command names it. The
    commands then refer to those files."""
    stages = []
    digest = info.get("init_from_digest")
    for folder in reversed(before):  # nearest first: each stage started from the one before it
        earlier = load_model(folder / "model.safetensors")
        if tensors_digest(earlier.state_dict()) != digest:
            raise CLIError(f"--before {folder}: its model is not the one the next stage started from "
                             "(weights digest)")
        stages.insert(0, dict(earlier.training_info))
        digest = stages[0].get("init_from_digest")
    first = stages[0] if stages else info
    shipped = shipped_commit(name, first["init_from_digest"]) if first.get("init_from") else None
    if shipped is not None:
        commit, t = shipped
        info["fine_tune_of"] = {**lineage_entry(name, commit, t), "file": f"{name}_before.safetensors",
                                "digest": first["init_from_digest"], "hardware": t.get("hardware"),
                                "command": t.get("command"),
                                "ancestors": earlier_fine_tunes(t) + started_from_another(t)}
        first["init_from_ref"] = info["fine_tune_of"]["file"]
    elif start := started_from_another(first):  # the first command then names that model
        first["init_from_ref"] = start[0]["name"]
        info["started_from"] = start[0]
    if stages:
        stem = Path(first["style"]).stem if isinstance(first.get("style"), str) else name  # single-style: its image
        for number, stage in enumerate(stages, 1):
            stage["run_name"] = f"{stem}_stage{number}"
            if number > 1:
                stage["init_from_ref"] = f"runs/{stages[number - 2]['run_name']}/model.safetensors"
        info["stages"] = [{"command": command_for(stage), "steps_done": stage.get("steps_done"),
                           "train_seconds": stage.get("train_seconds")} for stage in stages]
        info["init_from_ref"] = f"runs/{stages[-1]['run_name']}/model.safetensors"


def lineage_sentence(t: dict) -> str:
    """" A fine-tune of ...": what the card's step count and time do not include."""
    origin = t.get("fine_tune_of")
    if not origin:
        return ""
    parts = [stage_text(st) for st in t.get("stages", [])]
    term = (" with the shift-consistency term" if t.get("shift_weight")
            else f" with the {t['loss']} loss" if t.get("task") == "super_resolution" else "")
    stages = f" in {len(parts) + 1} stages (earlier stage: {'; '.join(parts)})" if parts else ""
    chain = earlier_fine_tunes(t)  # the model this run started from, then the ones that model started from
    described = [describe_entry(o) for o in chain]
    text = f" A fine-tune{term}{stages} of the `{origin['name']}` shipped before ({described[0]}"
    for o, d in zip(chain[1:], described[1:]):
        if o.get("name", origin["name"]) == origin["name"]:
            text += f"; itself a fine-tune of the one before, {d}"
        else:  # a model of another name is where the chain began (x8_feature from x8_pixel)
            text += f"; which started from the shipped `{o['name']}`, {d}"
    text += ")"
    if len(chain) > 1 or parts or chain[0].get("stages"):
        # the whole training time: this run's, its earlier stages', and every earlier model's with its stages
        seconds = lineage_seconds(t) + sum(lineage_seconds(o) for o in chain)
        text += f"; {seconds / 60:.0f} min of training in all"
    return text + "."


def stages_sentence(t: dict) -> str:
    """" The last of N stages ...": a model shipped as the last of several resumed runs, none of them
    shipped before, whose first began from another shipped model's weights (``started_from``)."""
    parts = [stage_text(st) for st in t["stages"]]
    text = (f" The last of {len(parts) + 1} stages, each started from the one before (earlier "
            f"stage{'s' if len(parts) > 1 else ''}: {'; '.join(parts)})")
    start = t.get("started_from")
    if start:
        text += f"; the first started from the shipped `{start['name']}` ({describe_entry(start)})"
    seconds = lineage_seconds(t) + (lineage_seconds(start) if start else 0)
    return text + f"; {seconds / 60:.0f} min of training in all."


def history_sentence(t: dict) -> str:
    """What a card's own step count and time leave out: the models it was fine-tuned from
    (:func:`lineage_sentence`), or else its earlier unshipped stages (:func:`stages_sentence`)."""
    if t.get("fine_tune_of"):
        return lineage_sentence(t)
    return stages_sentence(t) if t.get("stages") else ""
