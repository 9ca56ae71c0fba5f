"""Notebook 02's feature-inversion exercise accepts the reference and names typical mistakes. The wrong answers
below are written as a student would write them, independently of the catalogue inside
perceptual_utils.teaching.exercises.inversion."""
from __future__ import annotations

import pytest
import torch

from helpers import assert_names_the_mistake
from perceptual_utils.teaching import exercises as ex
from perceptual_utils.teaching.exercises.inversion import INVERSION_MISTAKES


def tv(x):
    return (x[:, :, 1:] - x[:, :, :-1]).pow(2).mean() + (x[..., 1:] - x[..., :-1]).pow(2).mean()


def feat(a, b):
    return (a - b).pow(2).flatten(1).sum(1).mean() / a[0].numel()


def objective_ok(net, x, y, layer, tv_weight):
    return feat(net(x)[layer], net(y)[layer].detach()) + tv_weight * tv(x)


WRONG = {
    "pixel_loss": lambda net, x, y, layer, w: ((x - y) ** 2).mean() + w * tv(x),
    "fixed_layer": lambda net, x, y, layer, w: feat(net(x)["relu2_2"], net(y)["relu2_2"]) + w * tv(x),
    "no_tv": lambda net, x, y, layer, w: feat(net(x)[layer], net(y)[layer]),
    "tv_unweighted": lambda net, x, y, layer, w: feat(net(x)[layer], net(y)[layer]) + tv(x),
    "no_normalisation": lambda net, x, y, layer, w: ((net(x)[layer] - net(y)[layer]) ** 2).sum() + w * tv(x),
    "tv_of_target": lambda net, x, y, layer, w: feat(net(x)[layer], net(y)[layer]) + w * tv(y),
}


def test_accepts_the_reference_and_a_hand_written_answer():
    assert ex.check_inversion_objective(ex.reference_inversion_objective, verbose=False).passed
    assert ex.check_inversion_objective(objective_ok, verbose=False).passed


def test_checking_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ex.check_inversion_objective(objective_ok, verbose=False)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("mistake", WRONG)
def test_names_the_mistake(mistake):
    assert_names_the_mistake(ex.check_inversion_objective, WRONG[mistake], mistake, INVERSION_MISTAKES)


def test_the_reference_is_what_invert_features_minimises(loss_network):
    from perceptual_utils.losses import PerceptualLoss

    y, x = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    objective = PerceptualLoss(content_weight=1.0, style_weight=0.0, tv_weight=0.7, content_layer="relu2_2",
                               style_layers=[], loss_network=loss_network)
    objective.set_content(y)
    total = objective(x)["total"]
    mine = ex.reference_inversion_objective(loss_network, x, y, "relu2_2", 0.7)
    assert torch.allclose(total, mine, rtol=1e-4)
