"""Notebook 04's training-step exercise accepts the reference and names typical mistakes. The wrong answers
below are written as a student would write them, independently of the catalogue inside
perceptual_utils.teaching.exercises.training_step."""
from __future__ import annotations

import pytest
import torch

from helpers import check
from perceptual_utils import losses
from perceptual_utils.teaching import exercises as ex
from perceptual_utils.teaching.exercises.training_step import TRAINING_MISTAKES


def step_ok(model, optimizer, pieces, batch):
    optimizer.zero_grad()
    out = model(batch)
    feats = pieces.loss_network(out)
    with torch.no_grad():
        content_target = pieces.loss_network(batch)[pieces.content_layer]
    l_c = losses.feature_reconstruction_loss(feats[pieces.content_layer], content_target)
    l_s = losses.style_reconstruction_loss(feats, pieces.style_grams)
    l_tv = losses.total_variation_loss(out)
    total = pieces.content_weight * l_c + pieces.style_weight * l_s + pieces.tv_weight * l_tv
    total.backward()
    optimizer.step()
    return {"total": total.item()}


def _step(zero=True, step=True, weighted=True, from_output=False, detach=False):
    def fn(model, optimizer, pieces, batch):
        if zero:
            optimizer.zero_grad()
        out = model(batch)
        if detach:
            out = out.detach()
        feats = pieces.loss_network(out)
        with torch.no_grad():
            content_target = pieces.loss_network(out if from_output else batch)[pieces.content_layer]
        l_c = losses.feature_reconstruction_loss(feats[pieces.content_layer], content_target)
        l_s = losses.style_reconstruction_loss(feats, pieces.style_grams)
        l_tv = losses.total_variation_loss(out)
        w = (pieces.content_weight, pieces.style_weight, pieces.tv_weight) if weighted else (1, 1, 1)
        total = w[0] * l_c + w[1] * l_s + w[2] * l_tv
        total.backward()
        if step:
            optimizer.step()
        return {"total": total.item()}
    return fn


STEP_WRONG = {
    "no_zero_grad": _step(zero=False),
    "no_step": _step(step=False),
    "content_from_output": _step(from_output=True),
    "unweighted": _step(weighted=False),
    "detached": _step(detach=True),
}


def test_training_step_accepts_the_reference_and_a_hand_written_answer():
    assert check(ex.check_training_step, ex.reference_training_step).passed
    assert check(ex.check_training_step, step_ok).passed
    # returning the total as a tensor is fine too
    assert check(ex.check_training_step, lambda *a: torch.tensor(step_ok(*a)["total"])).passed


@pytest.mark.parametrize("mistake", STEP_WRONG)
def test_training_step_names_the_mistake(mistake):
    r = check(ex.check_training_step, STEP_WRONG[mistake])
    assert not r.passed and r.mistake == mistake
    if mistake in TRAINING_MISTAKES:
        assert r.hint == TRAINING_MISTAKES[mistake][0]
    else:
        assert "gradient" in r.hint


def test_training_step_that_forgets_to_return_is_told_so():
    def no_return(*args):
        step_ok(*args)

    r = check(ex.check_training_step, no_return)
    assert r.attempted and r.mistake == "no_return"
