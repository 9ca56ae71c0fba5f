"""Ship trained models and write their cards: ``python benchmarks/model_cards.py``.

1. ``--ship RUN_FOLDER NAME ...``: copy ``RUN_FOLDER/model.safetensors`` into ``models/NAME.safetensors``
   in half precision, adding the reproducing command and the card's one-line summary to its metadata.
2. Always: render ``models/README.md`` from every model file in ``models/`` and its measurements in
   ``benchmarks/results/cpu_recipe/NAME.json`` (written by ``benchmarks/cpu_recipe.py``), next to
   the targets of the model-shipping issue. Nothing here is typed by hand: every number in the
   cards comes from those files.
"""
from __future__ import annotations

import argparse
import functools
import json
import subprocess
import tempfile
from pathlib import Path

from perceptual_utils.model_io import load_model, read_model_metadata, save_model, stored_digest, tensors_digest
from perceptual_utils.sr.evaluation import PAPER_RESULTS
from perceptual_utils.sr.training import SR_RECIPES
from perceptual_utils.style.training import STYLE_RECIPES
from perceptual_utils.vgg.network import CONTENT_LAYER
from perceptual_utils.shipped_models import models_dir

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "cpu_recipe"

STYLE_TARGET = 50  # Gatys-equivalent iterations from the photo at 256 px (the paper: 50-100)
GAP = ROOT / "benchmarks" / "results" / "style_gap.json"  # written by benchmarks/style_gap.py
SHIFT = ROOT / "benchmarks" / "results" / "shift_consistency.json"  # benchmarks/shift_consistency.py
BLOBS = ROOT / "benchmarks" / "results" / "blob_area.json"  # benchmarks/blob_area.py


@functools.cache
def _style_gaps() -> dict:
    return json.loads(GAP.read_text())["styles"] if GAP.is_file() else {}


def style_gap(label: str) -> dict | None:
    """``benchmarks/style_gap.py``'s numbers for one style (``model`` or ``model/painting``), if measured."""
    return _style_gaps().get(label)


@functools.cache
def _blob_measurements(results: Path) -> dict:
    return json.loads(results.read_text())["models"] if results.is_file() else {}


def blob_areas(name: str, path: Path) -> dict | None:
    """``benchmarks/blob_area.py``'s ``{style: {"mean", "per_photo"}}`` for a shipped model, if it was
    measured on these very weights (a re-shipped model's old numbers are left off its card)."""
    entry = dict(_blob_measurements(BLOBS).get(name, {}))
    if entry.pop("tensor_sha256", None) != stored_digest(path):
        return None
    return entry


def blob_sentence(area: dict) -> str:
    return (f"{100 * area['mean']:.2f}% of the outputs (per photo "
            f"{' / '.join(f'{100 * a:.2f}' for a in area['per_photo'])})")


def gap_sentence(gap: dict) -> str:
    """How much lower the network's objective would have to be to match 30 and 50 Gatys iterations."""
    m = gap["mean"]
    return (f"network {m['network']:.2f}; Gatys from the photo reaches {m['gatys_10']:.2f} after 10 iterations, "
            f"{m['gatys_30']:.2f} after 30, {m['gatys_50']:.2f} after 50 and {m['gatys_100']:.2f} after 100, so "
            f"matching 30 needs a {100 * gap['reduction_needed']['30']:.0f}% lower objective and {STYLE_TARGET} "
            f"a {100 * gap['reduction_needed']['50']:.0f}% lower one")
MULTI_STYLE_TOLERANCE = 0.20  # each painting of a multi-style network within 20% of its single-style model


def needs_shift_note(training: dict, summary: dict) -> bool:
    """A checkerboard above the issue's 1.2x bar, from a run without the shift-consistency term."""
    return not training.get("shift_weight") and summary["checkerboard_ratio_mean"] > 1.2


@functools.cache
def shift_note() -> str:
    """What the shift-consistency term did, from ``benchmarks/shift_consistency.py``'s results
    (docs/artefacts.md, "Shift consistency"); empty if that benchmark has not been run."""
    if not SHIFT.is_file():
        return ""
    row = json.loads(SHIFT.read_text())["models"].get("starry_night_shift_consistency")
    if not row:
        return ""
    return (f"; trained without the shift-consistency term (`--shift-weight 1000`): Starry Night with it, "
            f"{row['train_minutes']:.0f} minutes on one core, measures {row['checkerboard_ratio']:.1f}x "
            f"(`teaching/starry_night_shift_consistency`, `benchmarks/results/shift_consistency.json`)")


def command_for(training: dict) -> str:
    """The train command that reproduces a model (paths relative to the data root)."""
    budget = training.get("time_budget")
    data = Path(training["data"]).name
    if training["task"] == "style_transfer" and isinstance(training["style"], list):
        styles = " ".join(f"data/styles/{Path(p).name}" for p in training["style"])
        cmd = (f"python -m perceptual_utils train-style --style {styles} --data data/train/{data} "
               f"--out runs/{training.get('run_name', 'paintings')}")
    elif training["task"] == "style_transfer":
        style = Path(training["style"]).name
        cmd = (f"python -m perceptual_utils train-style --style data/styles/{style} --data data/train/{data} "
               f"--out runs/{training.get('run_name', Path(style).stem)}")
    else:
        run = training.get("run_name", f"x{training['scale']}_{training['loss']}")
        cmd = (f"python -m perceptual_utils train-sr --scale {training['scale']} --loss {training['loss']} "
               f"--data data/train/{data} --out runs/{run}")
        if training["loss"] == "feature" and training.get("layer", CONTENT_LAYER) != CONTENT_LAYER:
            cmd += f" --feature-layer {training['layer']}"  # not the paper's relu2_2
    if training.get("init_from"):  # fine-tuned: the model it started from, by its shipped name or a file
        cmd += f" --init-from {training.get('init_from_ref', Path(training['init_from']).stem)}"
    cmd += "".join(f" {flag} {value:g}" for flag, value in settings_off_recipe(training).items())
    return cmd + (f" --time-budget {budget}" if budget else f" --steps {training['steps']}")


def settings_off_recipe(training: dict) -> dict[str, float]:
    """``{flag: value}`` of the loss settings where the run differs from today's recipe default.

    All are recorded only when non-zero, so a model trained before the cpu style recipe jittered
    its grid (or with a pixel weight) needs the flag to be reproduced by today's code."""
    recipes = STYLE_RECIPES if training["task"] == "style_transfer" else SR_RECIPES
    recipe = recipes.get(training.get("recipe", "paper"), recipes["paper"])
    flags = {}
    for key, flag in (("lr", "--lr"), ("grid_jitter", "--grid-jitter"), ("pixel_weight", "--pixel-weight"),
                      ("shift_weight", "--shift-weight")):
        if key in recipe and training.get(key, 0) != recipe[key]:
            flags[flag] = training.get(key, 0)
    # no recipe warms up; recorded only when used. A fine-tune warms up by default
    # (FINE_TUNE_WARMUP_STEPS), so one without a warm-up needs the flag too.
    warmup = training.get("warmup_steps", 0)
    if warmup or training.get("init_from"):
        flags["--warmup-steps"] = warmup
    return flags


def reproduce_text(training: dict) -> str:
    """The card's reproducing commands: for a fine-tune of a model shipped before, how to get that
    model back from git, then each stage's command (:func:`ship`'s ``before``)."""
    origin = training.get("fine_tune_of")
    steps = [f"`git show {origin['commit']}:models/{origin['name']}.safetensors > {origin['file']}` (the "
             f"`{origin['name']}` shipped before)"] if origin else []
    steps += [f"`{stage['command']}`" for stage in training.get("stages", [])]
    return ", then ".join(steps + [f"`{command_for(training)}`"])


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
            raise SystemExit(f"--before {folder}: its model is not the one the next stage started from "
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


def style_summary(report: dict) -> str:
    if "styles" in report:  # multi-style: the medians per painting
        parts = [f"{name} {r['summary']['gatys_iterations_content']:g}/{r['summary']['gatys_iterations_noise']:g}"
                 for name, r in report["styles"].items()]
        return (f"{len(parts)} styles in one network; Gatys-equivalent iterations photo/noise: " + ", ".join(parts))
    s = report["summary"]
    return (f"Gatys-equivalent iterations {s['gatys_iterations_content']:g} from the photo, "
            f"{s['gatys_iterations_noise']:g} from noise (median of {s['photos']} held-out photos, 256 px)")


def report_summary(report: dict) -> str:
    """The one-line summary (``python -m perceptual_utils models``) of a ``cpu_recipe`` report."""
    return style_summary(report) if report["kind"] == "style_transfer" else sr_summary(report)


def sr_summary(report: dict) -> str:
    net = {r["set"]: r for r in report["rows"]["network"]}
    bic = {r["set"]: r for r in report["rows"]["bicubic"]}
    n, b = net["Set5"], bic["Set5"]
    return (f"Set5 x{report['scale']}: {n['psnr']:.2f} dB (bicubic {b['psnr']:.2f}), "
            f"LPIPS {n['lpips']:.3f} (bicubic {b['lpips']:.3f})")


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
    model = load_model(run / "model.safetensors")
    info = dict(model.training_info)
    if info.get("init_from"):
        fine_tune_lineage(name, info, before)
    if style_names:  # what users type after --style (the run recorded the image file stems)
        if len(style_names) != len(info.get("styles", [])):
            raise SystemExit(f"--style-names: {len(style_names)} names for {len(info.get('styles', []))} styles")
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
    report_path = RESULTS / f"{name}.json"
    if report_path.is_file():
        report = json.loads(report_path.read_text())
        info["summary"] = report_summary(report)
    dest = models_dir() / f"{name}.safetensors"  # a name like teaching/NAME ships into a subfolder
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, dest, training=info, half=True)
    return dest


def refresh_metadata() -> list[str]:
    """Rewrite the stored reproducing command and one-line summary of every shipped model where they
    have gone stale (a recipe default changed since it shipped; ``benchmarks/cpu_recipe.py`` measured
    it again after shipping); the tensors and their digest stay as they are."""
    from perceptual_utils.model_io import _read_tensors, _save_tensors

    changed = []
    for path in sorted(models_dir().rglob("*.safetensors")):
        tensors, meta = _read_tensors(path)
        training = meta.get("training", {})
        report = RESULTS / f"{path.stem}.json"  # its measurements echo the metadata they were made with
        data = json.loads(report.read_text()) if report.is_file() else None
        stale = "command" in training and training["command"] != command_for(training)
        if stale:
            training["command"] = command_for(training)
        if data is not None and "summary" in training:
            summary = report_summary(data)
            stale, training["summary"] = stale or summary != training["summary"], summary
        if stale:
            _save_tensors(path, tensors, meta)
            changed.append(path.name)
        if data is not None and data.get("training", {}).get("command") not in (None, training.get("command")):
            data["training"]["command"] = training["command"]
            report.write_text(json.dumps(data, indent=2))  # as cpu_recipe.py writes it
    return changed


def _minutes(info: dict) -> str:
    seconds = info.get("train_seconds")
    return f"{seconds / 60:.0f} min" if seconds else "see the command's --time-budget"


def style_card(name: str, meta: dict, report: dict | None, path: Path) -> list[str]:
    t = meta["training"]
    lines = [f"### `{name}` — {Path(t['style']).stem.replace('_', ' ')}", ""]
    crops = ", then ".join(f"{size} px" + (f" from step {first}" if first else "")
                           for first, size in t.get("crop_schedule", [[0, t["image_size"]]]))
    lines += [f"- **Trained**: {t.get('steps_done')} steps of batch {t['batch_size']} (crops of {crops}), "
              f"{t.get('recipe', '?')} recipe, {_minutes(t)} on {t.get('hardware', 'a CPU')}, {t.get('precision', '')}; "
              f"{t['data_images']} training photos ({Path(t['data']).name}); loss weights content "
              f"{t['content_weight']:g}, style {t['style_weight']:g}, TV {t['tv_weight']:g}; style image "
              f"{Path(t['style']).name} at {t['style_size']} px.{history_sentence(t)}",
              f"- **Reproduce**: {reproduce_text(t)}"]
    if report:
        s = report["summary"]
        for start, label in (("content", "the photo"), ("noise", "uniform noise")):
            per = s[f"gatys_iterations_{start}_per_photo"]
            bound = ">=" if s[f"gatys_iterations_{start}_capped"] else ""
            lines.append(f"- **Gatys-equivalent iterations from {label}**: median {bound}{s[f'gatys_iterations_{start}']:g} "
                         f"(per photo {per}; cap {report['cap']}; {s['photos']} held-out photos at {report['size']} px)")
        got = s["gatys_iterations_content"]
        verdict = "met" if got >= STYLE_TARGET else f"**missed** by {STYLE_TARGET - got:g} iterations"
        lines.append(f"- **Target** >= {STYLE_TARGET} from the photo (the paper: 50-100): {verdict}.")
        gap = style_gap(name)
        if gap:
            lines.append(f"- **How far** (`benchmarks/style_gap.py`, objective means over the photos): {gap_sentence(gap)}.")
        lines.append(f"- **Checkerboard energy** of the outputs: {s['checkerboard_ratio_mean']:.2f}x the photos' own "
                     f"(1.0 = none added){shift_note() if needs_shift_note(t, s) else ''}.")
    blobs = blob_areas(name, path)
    if blobs:
        lines.append(f"- **Flat-bright area** (`benchmarks/blob_area.py`): {blob_sentence(next(iter(blobs.values())))}.")
    return lines + [""]


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


def single_style_reports() -> dict[str, tuple[str, dict]]:
    """``{style image stem: (model name, report)}`` of the measured single-style models."""
    found = {}
    for path in sorted(RESULTS.glob("*.json")):
        report = json.loads(path.read_text())
        style = report.get("training", {}).get("style")
        if report.get("kind") == "style_transfer" and isinstance(style, str) and "summary" in report:
            found[Path(style).stem] = (path.stem, report)
    return found


def multi_style_card(name: str, meta: dict, report: dict | None, path: Path) -> list[str]:
    t = meta["training"]
    styles = t["styles"]
    crops = ", then ".join(f"{size} px" + (f" from step {first}" if first else "")
                           for first, size in t.get("crop_schedule", [[0, t["image_size"]]]))
    lines = [f"### `{name}` — {len(styles)} paintings in one network (conditional instance norm)", "",
             "- **Styles** (use `--style NAME`, `--mix A=0.7,B=0.3`, `--strength 0..1`): "
             + ", ".join(f"`{s}`" for s in styles) + ".",
             f"- **Trained**: {t.get('steps_done')} steps of batch {t['batch_size']} (crops of {crops}; the styles "
             f"take turns step by step, so each painting had about {t.get('steps_done', 0) // len(styles)} steps), "
             f"{t.get('recipe', '?')} recipe, {_minutes(t)} on {t.get('hardware', 'a CPU')}, {t.get('precision', '')}; "
             f"{t['data_images']} training photos ({Path(t['data']).name}); loss weights content "
             f"{t['content_weight']:g}, style {', '.join(f'{w:g}' for w in t['style_weights'])}, TV {t['tv_weight']:g}; "
             f"style images at {t['style_size']} px.{history_sentence(t)}",
             f"- **Reproduce**: {reproduce_text(t)}"]
    if report:
        singles = single_style_reports()
        photos = next(iter(report["styles"].values()))["summary"]["photos"]
        lines += ["", f"Gatys-equivalent iterations (median of {photos} "
                      f"held-out photos at {report['size']} px, cap {report['cap']}) against the single-style model of the "
                      f"same painting; target: within {MULTI_STYLE_TOLERANCE:.0%} of it (from the photo).", "",
                  f"| style | from the photo | from noise | checkerboard | single-style model (photo / noise) | within {MULTI_STYLE_TOLERANCE:.0%} |",
                  "|---|---|---|---|---|---|"]
        for style, image, r in zip(styles, t["style"], report["styles"].values()):
            s = r["summary"]
            single = singles.get(Path(image).stem)
            if single:
                ref = single[1]["summary"]
                ratio = s["gatys_iterations_content"] / ref["gatys_iterations_content"]
                # "within 20%": at least 80% of the single-style count (more is better, so above is fine)
                verdict = "yes" if ratio >= 1 - MULTI_STYLE_TOLERANCE else f"**no** ({ratio:.0%} of it)"
                ref_text = f"`{single[0]}` {ref['gatys_iterations_content']:g} / {ref['gatys_iterations_noise']:g}"
            else:
                verdict, ref_text = "-", "-"
            lines.append(f"| {style} | {s['gatys_iterations_content']:g} {s['gatys_iterations_content_per_photo']} | "
                         f"{s['gatys_iterations_noise']:g} {s['gatys_iterations_noise_per_photo']} | "
                         f"{s['checkerboard_ratio_mean']:.2f}x | {ref_text} | {verdict} |")
        lines.append("")
        lines.append(f"- **Target** >= {STYLE_TARGET} from the photo (the paper: 50-100): "
                     + ("met" if all(r["summary"]["gatys_iterations_content"] >= STYLE_TARGET
                                     for r in report["styles"].values()) else "**missed** for every painting, as for "
                        "the single-style models (minutes of one CPU core instead of hours of a GPU)") + ".")
        for style in styles:
            gap = style_gap(f"{name}/{style}")
            if gap:
                lines.append(f"- **How far**, {style} (`benchmarks/style_gap.py`): {gap_sentence(gap)}.")
    blobs = blob_areas(name, path)
    if blobs and len(blobs) == len(styles):  # measured in training order, under the run's own style names
        lines.append("- **Flat-bright area** (`benchmarks/blob_area.py`): "
                     + "; ".join(f"{style} {blob_sentence(area)}" for style, area in zip(styles, blobs.values())) + ".")
    return lines + [""]


SR_TARGETS = {
    ("pixel", 4): "Set5 PSNR >= bicubic + 1.0 dB",
    ("feature", 4): "Set5 LPIPS <= 0.20 with PSNR >= 27.0",
    ("feature", 8): "Set5 LPIPS >= 0.08 below bicubic",
}


def sr_verdict(loss: str, scale: int, net: dict, bic: dict) -> str:
    if (loss, scale) == ("pixel", 4):
        gap = net["psnr"] - bic["psnr"]
        return "met" if gap >= 1.0 else f"**missed**: +{gap:.2f} dB, {1.0 - gap:.2f} dB short"
    if (loss, scale) == ("feature", 4):
        ok = net["lpips"] <= 0.20 and net["psnr"] >= 27.0
        return "met" if ok else (f"**missed**: LPIPS {net['lpips']:.3f} ({max(net['lpips'] - 0.20, 0):.3f} above), "
                                 f"PSNR {net['psnr']:.2f}")
    if (loss, scale) == ("feature", 8):
        gap = bic["lpips"] - net["lpips"]
        return "met" if gap >= 0.08 else f"**missed**: {gap:.3f} below bicubic, {0.08 - gap:.3f} short"
    return "-"


def sr_card(name: str, meta: dict, report: dict | None) -> list[str]:
    t = meta["training"]
    layer = t.get("layer") or CONTENT_LAYER
    paper_layer = t["loss"] != "feature" or layer == CONTENT_LAYER  # the paper's own loss, so its row compares
    lines = [f"### `{name}` — x{t['scale']}, {t['loss']} loss" + ("" if paper_layer else f" at {layer}"), ""]
    lines += [f"- **Trained**: {t.get('steps_done')} steps of batch {t['batch_size']} ({t['patch']} px HR patches, "
              f"blur sigma {t['sigma']:g} then bicubic), {t.get('recipe', '?')} recipe, `{meta['config'].get('variant', 'paper')}` "
              f"network, {_minutes(t)} on {t.get('hardware', 'a CPU')}, {t.get('precision', '')}; "
              f"training photos {Path(t['data']).name} scaled to a {t.get('resize_short')} px short side."
              + ("" if paper_layer else f" Loss: the feature loss at {layer}, not the paper's {CONTENT_LAYER}.")
              + (f" Loss: {layer} feature loss plus {t['pixel_weight']:g} x the per-pixel loss (not in the paper; "
                 "SRGAN mixes the two the same way)." if t.get("pixel_weight") else "")
              + (history_sentence(t) or (
                  f" Started from the shipped `{t.get('init_from_ref', Path(t['init_from']).stem)}` (its weights, "
                  "not random ones), as SRGAN starts from SRResNet; add that model's training time."
                  if t.get("init_from") else "")),
              f"- **Reproduce**: {reproduce_text(t)}"]
    if report:
        paper_column = "paper (same loss)" if paper_layer else f"paper ({CONTENT_LAYER} feature loss)"
        lines += ["", f"| set | PSNR / SSIM / LPIPS | bicubic | {paper_column} |", "|---|---|---|---|"]
        bic = {r["set"]: r for r in report["rows"]["bicubic"]}
        for r in report["rows"]["network"]:
            b = bic[r["set"]]
            paper = PAPER_RESULTS.get((r["set"], t["scale"]), {}).get(t["loss"])
            lines.append(f"| {r['set']} | {r['psnr']:.2f} / {r['ssim']:.4f} / {r['lpips']:.3f} | "
                         f"{b['psnr']:.2f} / {b['ssim']:.4f} / {b['lpips']:.3f} | "
                         + (f"{paper[0]:.2f} / {paper[1]:.4f}" if paper else "-") + " |")
        target = SR_TARGETS.get((t["loss"], t["scale"]))
        if target:
            lines += ["", f"- **Target** {target}: {sr_verdict(t['loss'], t['scale'], next(r for r in report['rows']['network'] if r['set'] == 'Set5'), bic['Set5'])}."]
            if t.get("note"):  # why a target was missed, from the run that shipped it
                lines.append(f"- **Why**: {t['note']}")
        elif t.get("note"):  # no target of its own: what it is for
            lines += ["", f"- **Note**: {t['note']}"]
    return lines + [""]


def write_cards() -> Path:
    folder = models_dir()
    out = ["# Shipped models", "",
           "Trained by us on a CPU with the package's CPU recipe, on the 239-photo COCO sample (never on the demo",
           "photos in `data/content/`, which are the held-out photos of the style measurements). Each file is one",
           "half-precision `.safetensors` with its architecture and training settings in the metadata;",
           "`python -m perceptual_utils models` lists them, `stylize --model NAME` / `upscale --model NAME` use them.",
           "Measurements: `python benchmarks/cpu_recipe.py models/*.safetensors` (raw output in",
           "`benchmarks/results/cpu_recipe/`); this page is generated from those files by `benchmarks/model_cards.py`.",
           "", "How to read the style numbers: *Gatys-equivalent iterations* is how many L-BFGS iterations of Gatys'",
           "method, with the same objective, reach the network's objective on a held-out photo (the paper's Fig. 5).",
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
            report_path = RESULTS / f"{path.stem}.json"
            report = json.loads(report_path.read_text()) if report_path.is_file() else None
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
            out += [f"- `teaching/{path.name}`: {t.get('note', '')} {t.get('steps_done')} steps, {_minutes(t)} on "
                    f"{t.get('hardware', 'a CPU')}; {path.stat().st_size / 1e6:.1f} MB.".replace(":  ", ": ")]
        out.append("")
    readme = folder / "README.md"
    readme.write_text("\n".join(out).rstrip() + "\n")
    return readme


def write_gallery(size: int = 256) -> Path:
    """``models/gallery.jpg``: each held-out demo photo, then every shipped style model's output."""
    import torch

    from perceptual_utils.datafiles import content_photos
    from perceptual_utils.images import save_image
    from perceptual_utils.shipped_models import list_models
    from perceptual_utils.style.stylize import prepare_model, stylize

    styles = [prepare_model(m.path) for m in list_models("style_transfer")
              if not read_model_metadata(m.path).get("training", {}).get("styles")]  # one painting per column
    rows = []
    for photo in content_photos(4, size):
        rows.append(torch.cat([photo] + [stylize(net, photo) for net in styles], dim=-1))
    return save_image(torch.cat(rows, dim=-2), models_dir() / "gallery.jpg", quality=88)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ship", nargs=2, action="append", metavar=("RUN_FOLDER", "NAME"), default=[])
    p.add_argument("--hardware", help="where the shipped runs trained, if their metadata does not say")
    p.add_argument("--queue-log", type=Path, help="training-queue log with start/end times per model name")
    p.add_argument("--gallery", action="store_true", help="also render models/gallery.jpg")
    p.add_argument("--style-names", nargs="+", help="names of a multi-style model's styles, in training order")
    p.add_argument("--note", help="what the shipped model is for (teaching models' one-line card)")
    p.add_argument("--before", action="append", default=[], metavar="NAME=RUN_FOLDER",
                   help="the run folder of an earlier, unshipped stage of the shipped NAME (its run started "
                        "from that folder's model); repeat it for several stages, oldest first")
    p.add_argument("--refresh-metadata", "--refresh-commands", action="store_true", dest="refresh_metadata",
                   help="rewrite stale reproducing commands and summaries stored in the shipped models (e.g. "
                        "after a recipe default changed, or after cpu_recipe.py measured a model again)")
    args = p.parse_args()
    before: dict[str, list[Path]] = {}
    shipped_names = {name for _, name in args.ship}
    for item in args.before:
        name, _, folder = item.partition("=")
        if not folder or name not in shipped_names:
            raise SystemExit("--before: give NAME=RUN_FOLDER for a NAME shipped with --ship")
        before.setdefault(name, []).append(Path(folder))
    if args.refresh_metadata:
        print("metadata refreshed:", ", ".join(refresh_metadata()) or "none stale")
    for run, name in args.ship:
        print("shipped:", ship(Path(run), name, args.hardware, args.queue_log, args.style_names, args.note,
                                 before.get(name, [])))
    if args.gallery:
        print("gallery:", write_gallery())
    print("cards:", write_cards())


if __name__ == "__main__":
    main()
