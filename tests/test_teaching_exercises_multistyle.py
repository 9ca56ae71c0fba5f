"""Notebook 06's conditional-instance-norm exercise accepts the reference and names typical
mistakes. The wrong answers below are written as a student would write them, independently of the catalogue
inside perceptual_utils.teaching.exercises.multistyle."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers import check
from perceptual_utils.teaching import exercises as ex


def cin_by_hand(x, gamma, beta, mix):
    weights = mix / mix.sum()
    scale = (weights[:, None] * gamma).sum(0).view(1, -1, 1, 1)
    shift = (weights[:, None] * beta).sum(0).view(1, -1, 1, 1)
    return scale * F.instance_norm(x) + shift


def test_conditional_instance_norm_accepts_the_reference_and_a_hand_written_answer():
    assert check(ex.check_conditional_instance_norm, ex.reference_conditional_instance_norm).passed
    assert check(ex.check_conditional_instance_norm, cin_by_hand).passed


def test_conditional_instance_norm_reference_matches_the_networks_layer():
    from perceptual_utils.blocks import ConditionalInstanceNorm2d

    layer = ConditionalInstanceNorm2d(3, num_styles=2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0, 0.5], [0.3, 1.0, 1.5]]))
        layer.bias.copy_(torch.tensor([[0.0, 0.1, -0.2], [0.5, 0.0, 0.2]]))
    x = torch.randn(2, 3, 5, 6)
    layer.set_style(torch.tensor([[0.25, 0.75]]))
    want = ex.reference_conditional_instance_norm(x, layer.weight, layer.bias, torch.tensor([1.0, 3.0]))
    assert torch.allclose(layer(x), want, atol=1e-5)


def batch_norm_stats(x, gamma, beta, mix):
    w = mix / mix.sum()
    mu, var = x.mean(dim=(0, 2, 3), keepdim=True), x.var(dim=(0, 2, 3), keepdim=True, unbiased=False)
    return (w @ gamma).view(1, -1, 1, 1) * (x - mu) / (var + 1e-5).sqrt() + (w @ beta).view(1, -1, 1, 1)


def raw_mix(x, gamma, beta, mix):
    return (mix @ gamma).view(1, -1, 1, 1) * F.instance_norm(x) + (mix @ beta).view(1, -1, 1, 1)


def swapped(x, gamma, beta, mix):
    w = mix / mix.sum()
    return (w @ beta).view(1, -1, 1, 1) * F.instance_norm(x) + (w @ gamma).view(1, -1, 1, 1)


def no_eps(x, gamma, beta, mix):
    w = mix / mix.sum()
    mu, sd = x.mean(dim=(2, 3), keepdim=True), x.std(dim=(2, 3), keepdim=True, unbiased=False)
    return (w @ gamma).view(1, -1, 1, 1) * (x - mu) / sd + (w @ beta).view(1, -1, 1, 1)


@pytest.mark.parametrize("fn, mistake, words", [
    (batch_norm_stats, "batch_stats", "batch norm"), (raw_mix, "unnormalised_mix", "sum to 1"),
    (swapped, "swapped", "swapped"), (no_eps, "no_eps", "eps")])
def test_conditional_instance_norm_names_the_mistake(fn, mistake, words):
    result = check(ex.check_conditional_instance_norm, fn)
    assert not result.passed and result.mistake == mistake and words in result.hint
