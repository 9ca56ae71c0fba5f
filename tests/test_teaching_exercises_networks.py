"""Notebook 03's residual-block exercise accepts the reference and names typical mistakes. The wrong answers
below are written as a student would write them, independently of the catalogue inside
perceptual_utils.teaching.exercises.networks."""
from __future__ import annotations

import pytest
import torch

from helpers import assert_names_the_mistake, check
from perceptual_utils.teaching import exercises as ex
from perceptual_utils.teaching.exercises.networks import RESIDUAL_MISTAKES


def residual_ok(x, conv1, norm1, conv2, norm2):
    h = torch.relu(norm1(conv1(x)))
    h = norm2(conv2(h))
    return h + x[:, :, 2:-2, 2:-2]


RESIDUAL_WRONG = {
    "relu_after_add": lambda x, c1, n1, c2, n2: torch.relu(residual_ok(x, c1, n1, c2, n2)),
    "no_shortcut": lambda x, c1, n1, c2, n2: n2(c2(torch.relu(n1(c1(x))))),
    "no_crop": lambda x, c1, n1, c2, n2: n2(c2(torch.relu(n1(c1(x))))) + x,
    "corner_crop": lambda x, c1, n1, c2, n2: n2(c2(torch.relu(n1(c1(x))))) + x[:, :, :-4, :-4],
    "no_inner_relu": lambda x, c1, n1, c2, n2: n2(c2(n1(c1(x)))) + x[:, :, 2:-2, 2:-2],
}


def test_residual_block_accepts_the_reference_and_a_hand_written_answer():
    assert check(ex.check_residual_block, ex.reference_residual_forward).passed
    assert check(ex.check_residual_block, residual_ok).passed


@pytest.mark.parametrize("mistake", RESIDUAL_WRONG)
def test_residual_block_names_the_mistake(mistake):
    assert_names_the_mistake(ex.check_residual_block, RESIDUAL_WRONG[mistake], mistake, RESIDUAL_MISTAKES)
