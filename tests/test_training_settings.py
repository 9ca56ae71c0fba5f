"""Training settings: the learning-rate schedule and warm-up, refused values, recipes and the
trainers' two call styles (durations: tests/test_durations.py)."""
from __future__ import annotations

import pytest

from perceptual_utils.losses import LossWeights
from perceptual_utils.sr.training import SR_NET_KEYS, SR_RECIPES, SRTrainSettings
from perceptual_utils.style.training import STYLE_NET_KEYS, STYLE_RECIPES, StyleTrainSettings
from perceptual_utils.training.settings import (FINE_TUNE_WARMUP_STEPS, TrainConfig, TrainSettings,
                                                resolve_recipe, sort_options)


def test_cosine_schedule_runs_from_lr_to_lr_final():
    config = TrainConfig(steps=101, lr=1e-3, lr_schedule="cosine", lr_final=0.1)
    lrs = [config.lr_at(s) for s in range(101)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-4)
    assert lrs[50] == pytest.approx(0.5 * (1e-3 + 1e-4))
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert TrainConfig(steps=10, lr=2e-3).lr_at(7) == 2e-3  # constant: the paper
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="linear")
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=float("inf"))


def test_warmup_ramps_the_rate_up_then_follows_the_schedule():
    cosine = TrainConfig(steps=101, lr=1e-3, lr_schedule="cosine")
    warm = TrainConfig(steps=101, lr=1e-3, lr_schedule="cosine", warmup_steps=9)
    assert warm.lr_at(0) == pytest.approx(cosine.lr_at(0) / 10)  # the first Adam step is a tenth as large
    ramp = [warm.lr_at(s) for s in range(10)]
    assert all(a < b for a, b in zip(ramp, ramp[1:]))
    assert [warm.lr_at(s) for s in range(9, 101)] == [cosine.lr_at(s) for s in range(9, 101)]
    assert TrainConfig(steps=10, lr=2e-3, warmup_steps=3).lr_at(1) == pytest.approx(1e-3)  # constant schedule too
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="warmup_steps"):
            TrainConfig(warmup_steps=bad)


def test_a_fine_tune_warms_up_by_default_and_a_given_value_wins():
    assert TrainSettings().resolved_warmup_steps() == 0
    assert TrainSettings(init_from="x4_pixel").resolved_warmup_steps() == FINE_TUNE_WARMUP_STEPS > 0
    assert TrainSettings(init_from="x4_pixel", warmup_steps=0).resolved_warmup_steps() == 0
    assert TrainSettings(warmup_steps=5).resolved_warmup_steps() == 5
    settings = TrainSettings(init_from="x4_pixel")
    config = settings.loop_config({"batch_size": 2, "lr": 1e-3, "num_workers": 0, "lr_schedule": "cosine"}, 50)
    assert config.warmup_steps == FINE_TUNE_WARMUP_STEPS


@pytest.mark.parametrize("minutes", [-1.0, float("nan"), float("inf"), True])
def test_bad_checkpoint_minutes_are_refused(minutes):
    with pytest.raises(ValueError, match="checkpoint_minutes"):
        TrainConfig(checkpoint_minutes=minutes)


def test_recipes_fill_only_what_is_not_given():
    r = resolve_recipe("cpu", STYLE_RECIPES, {"steps": 12, "lr": None})
    assert r["steps"] == 12 and r["lr"] == STYLE_RECIPES["cpu"]["lr"] and r["recipe"] == "cpu"
    assert resolve_recipe("paper", SR_RECIPES, {})["variant"] == "paper"
    assert STYLE_RECIPES["cpu"]["variant"] == "modern" and SR_RECIPES["cpu"]["variant"] == "modern"
    with pytest.raises(ValueError, match="recipe"):
        resolve_recipe("gpu", STYLE_RECIPES, {})


def test_recipe_fills_only_what_the_settings_leave_open():
    r = StyleTrainSettings(recipe="cpu", steps=7).resolve(STYLE_RECIPES, loss=None)
    assert r["steps"] == 7 and r["image_size"] == 128 and r["loss"] == LossWeights(style_weight=2.0)
    assert StyleTrainSettings(recipe="paper").resolve(STYLE_RECIPES)["loss"] == LossWeights()


def test_flat_keywords_and_option_objects_sort_into_the_same_settings():
    flat = sort_options("train_style", {"steps": 12, "image_size": 32, "channels": 8, "style_weight": 2.0},
                        None, StyleTrainSettings, None, STYLE_NET_KEYS, ("style_weight",))
    objects = sort_options("train_style", {}, StyleTrainSettings(steps=12, image_size=32), StyleTrainSettings,
                           {"channels": 8}, STYLE_NET_KEYS)
    assert flat[:2] == objects[:2] and flat[2] == {"style_weight": 2.0}
    # a plain TrainSettings is widened to the task's settings, its values kept; flat keywords win
    train, net, _ = sort_options("train_sr", {"patch": 40, "scale": 8}, TrainSettings(steps=5, seed=3),
                                 SRTrainSettings, {"channels": 16}, SR_NET_KEYS)
    assert (train.steps, train.seed, train.patch, net) == (5, 3, 40, {"channels": 16, "scale": 8})
    with pytest.raises(TypeError, match="stpes"):
        sort_options("train_sr", {"stpes": 5}, None, SRTrainSettings, None, SR_NET_KEYS)
