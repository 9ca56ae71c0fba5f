"""Every model shipped in models/ loads, matches its metadata, works on a photo, and reproduces the
quality recorded in benchmarks/results/cpu_recipe/ on a small subset."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from perceptual_utils import model_io
from perceptual_utils.cli import main as cli_main
from perceptual_utils.datafiles import content_photos
from perceptual_utils.model_io import ModelFileError, read_model_metadata
from perceptual_utils.shipped_models import list_models, load_model, models_dir, resolve_model
from perceptual_utils.sr.evaluation import evaluate_sr
from perceptual_utils.style.evaluation import style_objective
from perceptual_utils.style.stylize import stylize
from perceptual_utils.sr.upscale import upscale

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "cpu_recipe"
SHIPPED = list_models()
STYLE = [m for m in SHIPPED if m.kind == "style_transfer"]
SR = [m for m in SHIPPED if m.kind == "super_resolution"]


def test_the_promised_models_are_shipped_small_and_half_precision():
    names = {m.name for m in SHIPPED}
    assert {"starry_night", "wave", "composition_vii", "the_scream"} <= names
    assert {"x4_pixel", "x4_feature", "x8_pixel", "x8_feature"} <= names
    assert "paintings" in names  # the multi-style network of the same four paintings
    total = sum(m.path.stat().st_size for m in SHIPPED)
    assert total < 40e6, f"models/ holds {total / 1e6:.1f} MB"
    from safetensors import safe_open

    for m in SHIPPED:
        with safe_open(str(m.path), framework="pt") as fh:
            assert all(fh.get_slice(k).get_dtype() in ("F16", "I64") for k in fh.keys()), m.name


@pytest.mark.parametrize("model", SHIPPED, ids=lambda m: m.name)
def test_metadata_is_complete(model):
    meta = read_model_metadata(model.path)
    t = meta["training"]
    assert {"command", "summary", "steps_done", "recipe", "hardware", "precision"} <= set(t), sorted(t)
    assert t["command"].startswith("python -m perceptual_utils train-")
    net = load_model(model.name)  # by name
    assert net.config == meta["config"]
    assert (RESULTS / f"{model.name}.json").is_file()
    # never trained on the held-out demo photos
    assert "content" not in Path(t["data"]).parts



@pytest.mark.parametrize("model", SHIPPED, ids=lambda m: m.name)
def test_the_stored_command_reproduces_the_recorded_loss_settings(model):
    """Parsed by the real CLI against today's recipes, the model's command gives the settings it
    was trained with (a recipe default that changed later must appear as a flag)."""
    import shlex

    from perceptual_utils.cli import build_parser
    from perceptual_utils.sr.training import SR_RECIPES
    from perceptual_utils.style.training import STYLE_RECIPES
    from perceptual_utils.training.settings import TrainSettings

    t = read_model_metadata(model.path)["training"]
    recipes = STYLE_RECIPES if model.kind == "style_transfer" else SR_RECIPES
    # a fine-tune in stages: each earlier stage's command, then the model's own
    for command in [stage["command"] for stage in t.get("stages", [])] + [t["command"]]:
        words = shlex.split(command)
        assert words[:3] == ["python", "-m", "perceptual_utils"]
        args = build_parser().parse_args(words[3:])
        recipe = recipes[args.recipe or "cpu"]  # the CI machines and ours have no CUDA
        assert (args.recipe or "cpu") == t["recipe"]
        for key in ("grid_jitter", "pixel_weight", "shift_weight"):
            if key in recipe:
                given = getattr(args, key, None)
                assert (recipe[key] if given is None else given) == t.get(key, 0), key
        if model.kind == "super_resolution":
            assert (args.scale, args.loss) == (t["scale"], t["loss"])
    # the last stage's optimiser settings are the model's own
    assert (recipe["lr"] if args.lr is None else args.lr) == t["lr"]
    warmup = TrainSettings(init_from=args.init_from, warmup_steps=args.warmup_steps).resolved_warmup_steps()
    assert warmup == t.get("warmup_steps", 0)  # recorded only when used
    assert (args.init_from is not None) == ("init_from" in t)


def test_a_folder_of_the_same_name_does_not_hide_a_shipped_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x4_pixel").mkdir()  # e.g. the run folder the model was trained in
    assert resolve_model("x4_pixel", "super_resolution") == models_dir() / "x4_pixel.safetensors"
    (tmp_path / "my_run").mkdir()
    (tmp_path / "my_run" / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelFileError, match="is a folder, not a model file .*model.safetensors"):
        load_model("my_run")


def test_names_resolve_and_unknown_names_list_the_available_ones(capsys):
    assert resolve_model("starry_night", "style_transfer") == models_dir() / "starry_night.safetensors"
    with pytest.raises(ModelFileError, match="available: .*starry_night"):
        resolve_model("starry_nite", "style_transfer")
    assert cli_main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(m.name in out for m in SHIPPED) and "Gatys-equivalent" in out


def test_names_are_resolved_above_model_io(tmp_path, monkeypatch):
    """model_io reads paths only; the name of a shipped model goes through this module (``pu.load_model``)."""
    import perceptual_utils as pu

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelFileError, match="starry_night: no such model file"):
        model_io.load_model("starry_night")
    assert pu.load_model is load_model
    shipped = models_dir() / "starry_night.safetensors"
    assert load_model("starry_night").training_info == read_model_metadata(shipped)["training"]
    with pytest.raises(ModelFileError, match="neither a model file nor a shipped super-resolution model"):
        load_model("starry_nite", kind="super_resolution")


def _style_cases():
    """(model, style index or None, name) for every style of every shipped style model."""
    cases = []
    for m in STYLE:
        styles = read_model_metadata(m.path)["training"].get("styles")
        cases += [(m, i, f"{m.name}-{s}") for i, s in enumerate(styles)] if styles else [(m, None, m.name)]
    return cases


@pytest.mark.parametrize("model, index, name", _style_cases(), ids=lambda c: c if isinstance(c, str) else "")
def test_style_model_stylises_and_reproduces_its_objective(model, index, name):
    report = json.loads((RESULTS / f"{model.name}.json").read_text())
    net = load_model(model.name, kind="style_transfer")
    if index is not None:  # a multi-style model: one report per style
        report = report["styles"][net.training_info["styles"][index]] | {"size": report["size"]}
    photo = content_photos(1, report["size"])[0]
    out = stylize(net, photo, style=index)
    assert out.shape == photo.shape and 0 <= float(out.min()) and float(out.max()) <= 1
    assert (out - photo).abs().mean() > 0.05  # it does change the photo
    objective, _ = style_objective(net.training_info, style_index=index)
    with torch.no_grad():
        value = float(objective(out[None], content=photo[None])["total"])
    recorded = report["per_photo"][0]["network_objective"]
    assert value == pytest.approx(recorded, rel=0.02)


@pytest.mark.parametrize("model", SR, ids=lambda m: m.name)
def test_sr_model_upscales_and_reproduces_its_psnr(model, shared_data, tmp_path):
    report = json.loads((RESULTS / f"{model.name}.json").read_text())
    net = load_model(model.name, kind="super_resolution")
    scale = net.config["scale"]
    lr = torch.rand(3, 20, 24)
    assert upscale(net, lr).shape == (3, 20 * scale, 24 * scale)
    recorded = {r["image"]: r["psnr"] for r in report["set5_per_image"]["network"]}
    subset = tmp_path / "sr" / "Two"
    subset.mkdir(parents=True)
    for name in ("baby", "bird"):
        (subset / f"{name}.png").symlink_to(shared_data / "sr" / "Set5" / f"{name}.png")
    result = evaluate_sr(net, scale, sets=["Two"], root=tmp_path, lpips=False, progress=False)
    for row in result.per_image:
        assert row["psnr"] == pytest.approx(recorded[row["image"]], abs=0.05), row["image"]
