"""Notebook 01's loss exercises (feature loss, Gram matrix, style loss, total variation) accept the reference
and name typical mistakes. The wrong answers below are written as a student would write them, independently of
the catalogue inside perceptual_utils.teaching.exercises.losses."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers import assert_names_the_mistake, check
from perceptual_utils import losses
from perceptual_utils.teaching import exercises as ex
from perceptual_utils.teaching.exercises.losses import FEATURE_MISTAKES, GRAM_MISTAKES, STYLE_MISTAKES, TV_MISTAKES


# ----------------------------------------------------------------------------- feature loss

def feat_ok(f, t):
    b, c, h, w = f.shape
    return ((f - t) ** 2).sum() / (b * c * h * w)


FEATURE_WRONG = {
    "no_square": lambda f, t: (f - t).abs().mean(),
    "no_normalisation": lambda f, t: ((f - t) ** 2).sum(),
    "hw_only": lambda f, t: ((f - t) ** 2).sum() / (f.shape[0] * f.shape[-1] * f.shape[-2]),
    "batch_sum": lambda f, t: sum(((a - b) ** 2).mean() for a, b in zip(f, t)),
    "plain_norm": lambda f, t: torch.linalg.norm(f - t),
}


def test_feature_loss_accepts_the_reference_and_a_hand_written_answer():
    assert check(ex.check_feature_loss, losses.feature_reconstruction_loss).passed
    assert check(ex.check_feature_loss, feat_ok).passed
    assert check(ex.check_feature_loss, lambda f, t: F.mse_loss(f, t)).passed


@pytest.mark.parametrize("mistake", FEATURE_WRONG)
def test_feature_loss_names_the_mistake(mistake):
    r = check(ex.check_feature_loss, FEATURE_WRONG[mistake])
    assert r.attempted and not r.passed and r.mistake == mistake
    assert r.hint == FEATURE_MISTAKES[mistake][0]


def test_feature_loss_wrong_factor_gets_a_normalisation_hint():
    r = check(ex.check_feature_loss, lambda f, t: 2 * F.mse_loss(f, t))
    assert r.mistake == "factor" and "factor 2" in r.hint and "normalisation" in r.hint


# ----------------------------------------------------------------------------- Gram matrix

def gram_ok(f):
    b, c, h, w = f.shape
    psi = f.view(b, c, h * w)
    return torch.bmm(psi, psi.transpose(1, 2)) / (c * h * w)


GRAM_WRONG = {
    "transposed": lambda f: (lambda p: p.transpose(1, 2) @ p)(f.flatten(2)) / f[0].numel(),
    "wrong_reshape": lambda f: (lambda p: p.transpose(1, 2) @ p)(f.reshape(f.shape[0], f.shape[2] * f.shape[3],
                                                                            f.shape[1])) / f[0].numel(),
    "no_normalisation": lambda f: f.flatten(2) @ f.flatten(2).transpose(1, 2),
    "hw_only": lambda f: f.flatten(2) @ f.flatten(2).transpose(1, 2) / (f.shape[2] * f.shape[3]),
    "no_batch": lambda f: f[0].flatten(1) @ f[0].flatten(1).T / f[0].numel(),
}


def test_gram_accepts_the_reference_and_a_hand_written_answer():
    assert check(ex.check_gram_matrix, losses.gram_matrix).passed
    assert check(ex.check_gram_matrix, gram_ok).passed
    assert check(ex.check_gram_matrix, lambda f: torch.einsum("bchw,bdhw->bcd", f, f) / f[0].numel()).passed


@pytest.mark.parametrize("mistake", GRAM_WRONG)
def test_gram_names_the_mistake(mistake):
    assert_names_the_mistake(ex.check_gram_matrix, GRAM_WRONG[mistake], mistake, GRAM_MISTAKES)


def test_gram_transposed_hint_mentions_psi_psi_t():
    r = check(ex.check_gram_matrix, GRAM_WRONG["transposed"])
    assert "psi psi^T" in r.hint and "C_j x C_j" in r.hint


# ----------------------------------------------------------------------------- style loss

def style_ok(features, grams):
    total = 0.0
    for j, target in grams.items():
        total = total + ((gram_ok(features[j]) - target) ** 2).sum(dim=(1, 2)).mean()
    return total


def style_overwrite(features, grams):
    for j, target in grams.items():
        total = ((gram_ok(features[j]) - target) ** 2).sum(dim=(1, 2)).mean()
    return total


STYLE_WRONG = {
    "no_square": lambda f, g: sum((gram_ok(f[j]) - t).abs().sum((1, 2)).mean() for j, t in g.items()),
    "not_squared_norm": lambda f, g: sum(torch.linalg.matrix_norm(gram_ok(f[j]) - t).mean() for j, t in g.items()),
    "mean_entries": lambda f, g: sum(((gram_ok(f[j]) - t) ** 2).mean() for j, t in g.items()),
    "last_layer_only": style_overwrite,
    "batch_sum": lambda f, g: sum(((gram_ok(f[j]) - t) ** 2).sum() for j, t in g.items()),
}


def test_style_loss_accepts_the_reference_and_a_hand_written_answer():
    assert check(ex.check_style_loss, losses.style_reconstruction_loss).passed
    assert check(ex.check_style_loss, style_ok).passed


@pytest.mark.parametrize("mistake", STYLE_WRONG)
def test_style_loss_names_the_mistake(mistake):
    assert_names_the_mistake(ex.check_style_loss, STYLE_WRONG[mistake], mistake, STYLE_MISTAKES)


# ----------------------------------------------------------------------------- total variation

def tv_ok(x):
    return ((x[:, :, 1:, :] - x[:, :, :-1, :]) ** 2).mean() + ((x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2).mean()


TV_WRONG = {
    "no_square": lambda x: x.diff(dim=2).abs().mean() + x.diff(dim=3).abs().mean(),
    "sum": lambda x: (x.diff(dim=2) ** 2).sum() + (x.diff(dim=3) ** 2).sum(),
    "one_direction": lambda x: (x.diff(dim=2) ** 2).mean(),
    "channel_dim": lambda x: (x.diff(dim=1) ** 2).mean() + (x.diff(dim=2) ** 2).mean(),
    "joint_mean": lambda x: (x.diff(dim=2)[..., :-1] ** 2 + x.diff(dim=3)[..., :-1, :] ** 2).mean(),
}


def test_tv_accepts_the_reference_and_a_hand_written_answer():
    assert check(ex.check_total_variation, losses.total_variation_loss).passed
    assert check(ex.check_total_variation, tv_ok).passed


@pytest.mark.parametrize("mistake", TV_WRONG)
def test_tv_names_the_mistake(mistake):
    assert_names_the_mistake(ex.check_total_variation, TV_WRONG[mistake], mistake, TV_MISTAKES)
