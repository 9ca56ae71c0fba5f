"""The model cards' lineage of a fine-tuned model (perceptual_utils/model_cards/lineage.py): a fine-tune of a
model that was itself a fine-tune names every earlier model and adds up the whole training time."""
from __future__ import annotations

from pathlib import Path

import pytest

from perceptual_utils.errors import CLIError
from perceptual_utils.model_cards import commands, lineage



def shipped(commit: str, steps: int, seconds: float, origin: dict | None = None) -> dict:
    """The training info of a model once shipped at ``commit``."""
    info = {"steps_done": steps, "train_seconds": seconds, "precision": "float32"}
    if origin:
        info["fine_tune_of"] = origin
    return info


def test_a_first_fine_tune_names_its_start_only():
    start = shipped("aaaaaaa", 655, 17 * 60)
    origin = {"name": "starry_night", "commit": "aaaaaaa", **start, "ancestors": lineage.earlier_fine_tunes(start)}
    assert origin["ancestors"] == []
    text = lineage.lineage_sentence({"fine_tune_of": origin, "train_seconds": 22 * 60, "shift_weight": 1000})
    assert text == (" A fine-tune with the shift-consistency term of the `starry_night` shipped before "
                    "(git aaaaaaa: 655 steps, 17 min, float32).")


def test_a_fine_tune_of_a_fine_tune_names_both_and_adds_up_the_time():
    first = {"name": "starry_night", "commit": "aaaaaaa", **shipped("aaaaaaa", 655, 17 * 60), "ancestors": []}
    second = shipped("bbbbbbb", 244, 22 * 60, origin=first)
    ancestors = lineage.earlier_fine_tunes(second)
    assert [a["commit"] for a in ancestors] == ["aaaaaaa"]
    origin = {"name": "starry_night", "commit": "bbbbbbb", **second, "ancestors": ancestors}
    text = lineage.lineage_sentence({"fine_tune_of": origin, "train_seconds": 52 * 60, "shift_weight": 1000})
    assert "(git bbbbbbb: 244 steps, 22 min, float32; itself a fine-tune of the one before, git aaaaaaa: " \
           "655 steps, 17 min, float32)" in text
    assert text.endswith("; 91 min of training in all.")  # 17 + 22 + 52


def test_not_a_fine_tune_has_no_lineage():
    assert lineage.lineage_sentence({"train_seconds": 60}) == ""
    assert lineage.earlier_fine_tunes({"steps_done": 1}) == []


def test_a_chain_that_began_under_another_name_says_where_and_counts_every_stage():
    # x8_feature (373 steps) started from x8_pixel; the new one is its fine-tune in two stages
    pixel = {"name": "x8_pixel", "commit": "ccccccc", **shipped("ccccccc", 648, 30 * 60)}
    origin = {"name": "x8_feature", "commit": "ddddddd", **shipped("ddddddd", 373, 24 * 60), "ancestors": [pixel]}
    t = {"task": "super_resolution", "loss": "feature", "fine_tune_of": origin, "train_seconds": 25 * 60,
         "stages": [{"steps_done": 550, "train_seconds": 24 * 60}]}
    text = lineage.lineage_sentence(t)
    assert text.startswith(" A fine-tune with the feature loss in 2 stages (earlier stage: 550 steps in 24 min) "
                           "of the `x8_feature` shipped before (git ddddddd: 373 steps, 24 min, float32; "
                           "which started from the shipped `x8_pixel`, git ccccccc: 648 steps, 30 min, float32)")
    assert text.endswith("; 103 min of training in all.")  # 30 + 24 + 24 + 25


def test_an_earlier_model_shipped_after_stages_of_its_own_counts_them():
    # x8_feature shipped as a run resumed from an unshipped stage (550 steps, 22 min), then fine-tuned again
    staged = {**shipped("eeeeeee", 606, 25 * 60), "stages": [{"command": "train-sr ...", "steps_done": 550,
                                                             "train_seconds": 22 * 60}]}
    entry = lineage.lineage_entry("x8_feature", "eeeeeee", staged)
    assert entry["stages"] == [{"steps_done": 550, "train_seconds": 22 * 60}]  # the command is not carried
    origin = {**entry, "ancestors": []}
    text = lineage.lineage_sentence({"task": "super_resolution", "loss": "feature", "fine_tune_of": origin,
                                         "train_seconds": 24 * 60})
    assert text == (" A fine-tune with the feature loss of the `x8_feature` shipped before (git eeeeeee: 606 steps, "
                    "25 min, float32, after an earlier stage of 550 steps in 22 min); 71 min of training in all.")
    assert "stages" not in lineage.lineage_entry("x8_feature", "fffffff", shipped("fffffff", 373, 60))


def test_a_model_shipped_after_unshipped_stages_counts_them_and_where_the_first_began():
    # x8_feature at relu3_3: two stages, neither shipped, the first from the shipped x8_pixel's weights
    pixel = {"name": "x8_pixel", "commit": "ccccccc", **shipped("ccccccc", 648, 30 * 60)}
    t = {"train_seconds": 25 * 60, "started_from": pixel,
         "stages": [{"steps_done": 931, "train_seconds": 20 * 60}, {"steps_done": 2016, "train_seconds": 25 * 60}]}
    assert lineage.stages_sentence(t) == (
        " The last of 3 stages, each started from the one before (earlier stages: 931 steps in 20 min; 2016 steps "
        "in 25 min); the first started from the shipped `x8_pixel` (git ccccccc: 648 steps, 30 min, float32); "
        "100 min of training in all.")  # 30 + 20 + 25 + 25
    alone = lineage.stages_sentence({"train_seconds": 60, "stages": [{"steps_done": 5, "train_seconds": 60}]})
    assert alone == " The last of 2 stages, each started from the one before (earlier stage: 5 steps in 1 min); " \
                    "2 min of training in all."
    # every card (style ones too) adds up earlier stages, and says nothing for a model trained in one go
    assert lineage.history_sentence({"train_seconds": 60, "stages": [{"steps_done": 5, "train_seconds": 60}]}) \
        == alone
    assert lineage.history_sentence({"train_seconds": 60}) == ""


def _sr_stage(folder: Path, init_from: str, init_digest: str, seed: int) -> tuple[Path, str]:
    """A run folder whose model started from ``init_from`` (weights digest ``init_digest``)."""
    import torch

    from perceptual_utils.model_io import load_model, save_model, tensors_digest
    from perceptual_utils.style.net import StyleTransferNet

    torch.manual_seed(seed)
    training = {"task": "super_resolution", "recipe": "cpu", "scale": 8, "loss": "feature", "layer": "relu3_3",
                "data": "/data/train/coco_mini", "lr": 5e-4, "time_budget": "25m", "warmup_steps": 30,
                "steps_done": 100 + seed, "train_seconds": 600.0, "init_from": init_from,
                "init_from_digest": init_digest}
    path = save_model(StyleTransferNet("modern"), folder / "model.safetensors", training=training)
    return path, tensors_digest(load_model(path).state_dict())


def test_lineage_through_unshipped_stages_checks_each_link_and_names_the_shipped_start(tmp_path, monkeypatch):
    import torch

    from perceptual_utils.model_io import load_model, save_model, tensors_digest
    from perceptual_utils.style.net import StyleTransferNet

    models = tmp_path / "models"
    torch.manual_seed(0)
    start = save_model(StyleTransferNet("modern"), models / "x8_pixel.safetensors", half=True)
    start_digest = tensors_digest(load_model(start).state_dict())
    monkeypatch.setattr(lineage, "models_dir", lambda: models)
    # git history stands in for a dict: only x8_pixel was ever shipped, at ccccccc
    monkeypatch.setattr(lineage, "shipped_commit", lambda name, digest: (
        ("ccccccc", shipped("ccccccc", 648, 1800)) if (name, digest) == ("x8_pixel", start_digest) else None))
    _, d1 = _sr_stage(tmp_path / "s1", "/runs/x8_pixel_copy.safetensors", start_digest, 1)
    s2, d2 = _sr_stage(tmp_path / "s2", str(tmp_path / "s1/model.safetensors"), d1, 2)
    info = dict(load_model(s2).training_info) | {"init_from": "/runs/s2.safetensors", "init_from_digest": d2}
    lineage.fine_tune_lineage("x8_feature", info, [tmp_path / "s1", tmp_path / "s2"])
    assert info["started_from"]["name"] == "x8_pixel" and "fine_tune_of" not in info
    assert [s["steps_done"] for s in info["stages"]] == [101, 102]
    text = commands.reproduce_text(info)
    assert "--out runs/x8_feature_stage1 --feature-layer relu3_3 --init-from x8_pixel " in text
    assert "--out runs/x8_feature_stage2 --feature-layer relu3_3 --init-from runs/x8_feature_stage1/model" in text
    assert text.endswith("--out runs/x8_feature --feature-layer relu3_3 --init-from "
                         "runs/x8_feature_stage2/model.safetensors --warmup-steps 30 --time-budget 25m`")
    with pytest.raises(CLIError, match="s1: its model is not the one the next stage started from"):
        # stage 1 given alone, but this run started from stage 2's model
        lineage.fine_tune_lineage("x8_feature", dict(load_model(s2).training_info) | {"init_from_digest": d2},
                                  [tmp_path / "s1"])
