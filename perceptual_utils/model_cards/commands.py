"""The commands that reproduce a shipped model, as its card and its metadata give them: paths
relative to the data root, and a flag for every loss setting where the run differs from today's
recipe default, so that today's code trains the same model."""
from __future__ import annotations

from pathlib import Path

from ..sr.training import SR_RECIPES
from ..style.training import STYLE_RECIPES
from ..vgg.network import CONTENT_LAYER


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
