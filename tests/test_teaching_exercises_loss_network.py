"""Notebook 00's ImageNet-normalisation exercise accepts the reference and names typical mistakes. The wrong
answers below are written as a student would write them, independently of the catalogue inside
perceptual_utils.teaching.exercises.loss_network."""
from __future__ import annotations

import pytest
import torch

from helpers import assert_names_the_mistake
from perceptual_utils.teaching import exercises as ex
from perceptual_utils.teaching.exercises.loss_network import NORMALISATION_MISTAKES

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def normalise_ok(images):
    mean = torch.tensor(MEAN, dtype=images.dtype)[None, :, None, None]
    std = torch.tensor(STD, dtype=images.dtype)[None, :, None, None]
    return (images - mean) / std


def _col(values, x):
    return torch.tensor(values, dtype=x.dtype).reshape(1, 3, 1, 1)


WRONG = {
    "no_std": lambda x: x - _col(MEAN, x),
    "std_first": lambda x: x / _col(STD, x) - _col(MEAN, x),
    "bgr": lambda x: (x - _col(MEAN[::-1], x)) / _col(STD[::-1], x),
    "minus_one_to_one": lambda x: x * 2 - 1,
    "per_image_stats": lambda x: (x - x.mean(dim=(-2, -1), keepdim=True)) / x.std(dim=(-2, -1), keepdim=True),
    "wrong_broadcast": lambda x: (x - torch.tensor(MEAN, dtype=x.dtype)) / torch.tensor(STD, dtype=x.dtype),
}


def test_accepts_the_reference_and_a_hand_written_answer():
    assert ex.check_imagenet_normalisation(ex.reference_imagenet_normalisation, verbose=False).passed
    assert ex.check_imagenet_normalisation(normalise_ok, verbose=False).passed


def test_the_reference_is_what_the_loss_network_does(loss_network):
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(ex.reference_imagenet_normalisation(x), loss_network.normalize(x))


@pytest.mark.parametrize("mistake", WRONG)
def test_names_the_mistake(mistake):
    assert_names_the_mistake(ex.check_imagenet_normalisation, WRONG[mistake], mistake, NORMALISATION_MISTAKES)
