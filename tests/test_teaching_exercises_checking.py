"""The checkers' shared behaviour (perceptual_utils.teaching.exercises.checking): a blank cell is "not
attempted" and hands back the reference, a failed check says so and goes on with the reference, a passed one
uses the student's function, and every exercise has a solution."""
from __future__ import annotations

import pytest
import torch

from perceptual_utils import losses
from perceptual_utils.teaching import exercises as ex


def not_implemented(*args):
    raise NotImplementedError


def returns_none(*args):
    pass


@pytest.mark.parametrize("name", sorted(ex.EXERCISES))
@pytest.mark.parametrize("blank", [None, not_implemented, returns_none], ids=["None", "NotImplementedError", "returns None"])
def test_blank_cell_is_not_attempted_and_hands_back_the_reference(name, blank, capsys):
    result = ex.EXERCISES[name](blank)
    assert not result.attempted and not result.passed and result.status == "not attempted"
    assert "not attempted, using the reference" in capsys.readouterr().out
    assert result.fn is not blank and result.fn is not None  # the notebook goes on with the reference


@pytest.mark.parametrize("name", sorted(ex.EXERCISES))
def test_solution_shows_the_reference_source(name):
    text = ex.solution(name, show=False)
    assert "def " in text and "reference" in text


def test_solution_of_unknown_exercise_is_refused():
    with pytest.raises(ValueError, match="unknown exercise"):
        ex.solution("nope")


def test_failed_check_uses_the_reference_and_says_so(capsys):
    result = ex.check_total_variation(lambda x: (x[:, :, 1:] - x[:, :, :-1]).abs().mean()
                                      + (x[..., 1:] - x[..., :-1]).abs().mean())
    out = capsys.readouterr().out
    assert "not yet" in out and "reference is used" in out and "solution('total_variation')" in out
    x = torch.rand(1, 3, 8, 8)
    assert torch.allclose(result(x), losses.total_variation_loss(x))  # callable: the reference


def test_passed_check_uses_the_students_function(capsys):
    def mine(x):
        return (x[:, :, 1:] - x[:, :, :-1]).pow(2).mean() + (x[..., 1:] - x[..., :-1]).pow(2).mean()

    result = ex.check_total_variation(mine)
    assert result.passed and result.fn is mine and "correct" in capsys.readouterr().out


def test_exercises_are_listed_in_the_workbooks_order():
    assert list(ex.EXERCISES) == ["imagenet_normalisation", "feature_loss", "gram_matrix", "style_loss",
                                  "total_variation", "inversion_objective", "residual_block", "training_step",
                                  "degradation", "psnr_y", "conditional_instance_norm"]
