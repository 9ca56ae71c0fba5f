"""The commands that reproduce a shipped model (perceptual_utils/model_cards/commands.py)."""
from __future__ import annotations

from perceptual_utils.model_cards import commands


def test_the_reproducing_command_names_a_feature_layer_other_than_the_papers():
    sr = {"task": "super_resolution", "recipe": "cpu", "scale": 4, "loss": "feature", "data": "data/train/coco_mini",
          "lr": 5e-4, "steps": 100, "layer": "relu2_2"}
    assert "--feature-layer" not in commands.command_for(sr)
    assert "--feature-layer relu3_3" in commands.command_for(sr | {"layer": "relu3_3"})
    assert "--feature-layer" not in commands.command_for(sr | {"loss": "pixel", "layer": None})
