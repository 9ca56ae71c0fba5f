"""Notebook 05's exercises (PSNR on Y, the SR degradation) accept the reference and name typical
mistakes. The wrong answers below are written as a student would write them, independently of the catalogue
inside perceptual_utils.teaching.exercises.super_resolution."""
from __future__ import annotations

import math

import pytest
import torch.nn.functional as F

from helpers import assert_names_the_mistake, check
from perceptual_utils.color import rgb_to_y_bt601
from perceptual_utils.sr import degradation, metrics
from perceptual_utils.teaching import exercises as ex
from perceptual_utils.teaching.exercises.super_resolution import DEGRADE_MISTAKES, PSNR_MISTAKES


# ----------------------------------------------------------------------------- PSNR on Y

def psnr_ok(pred, target, scale):
    a = rgb_to_y_bt601(pred)[..., scale:-scale, scale:-scale].double()
    b = rgb_to_y_bt601(target)[..., scale:-scale, scale:-scale].double()
    return 10 * math.log10(255 ** 2 / float(((a - b) ** 2).mean()))


def _y(x):
    return 16 + 65.481 * x[0] + 128.553 * x[1] + 24.966 * x[2]


PSNR_WRONG = {
    "rgb": lambda p, t, s: 10 * math.log10(1 / float(((p - t)[:, s:-s, s:-s].double() ** 2).mean())),
    "no_shave": lambda p, t, s: 10 * math.log10(255 ** 2 / float(((_y(p) - _y(t)).double() ** 2).mean())),
    "full_range_y": lambda p, t, s: 10 * math.log10(1 / float((((0.299 * (p - t)[0] + 0.587 * (p - t)[1]
                                                                 + 0.114 * (p - t)[2])[s:-s, s:-s]).double() ** 2)
                                                               .mean())),
    "peak_mismatch": lambda p, t, s: 10 * math.log10(1 / float(((_y(p) - _y(t))[s:-s, s:-s].double() ** 2).mean())),
    "sqrt_mse": lambda p, t, s: 20 * math.log10(255 / float(((_y(p) - _y(t))[s:-s, s:-s].double() ** 2).mean())),
}


def test_psnr_accepts_the_reference_and_a_hand_written_answer():
    assert check(ex.check_psnr_y, ex.reference_psnr_y).passed
    assert check(ex.check_psnr_y, psnr_ok).passed
    assert check(ex.check_psnr_y, lambda p, t, s: metrics.psnr(p, t, shave_border=s)).passed  # a 0-d tensor


@pytest.mark.parametrize("mistake", PSNR_WRONG)
def test_psnr_names_the_mistake(mistake):
    assert_names_the_mistake(ex.check_psnr_y, PSNR_WRONG[mistake], mistake, PSNR_MISTAKES)


def test_psnr_rgb_hint_says_y():
    r = check(ex.check_psnr_y, PSNR_WRONG["rgb"])
    assert "luma Y" in r.hint


# ----------------------------------------------------------------------------- degradation

def degrade_ok(hr, scale):
    blurred = degradation.gaussian_blur(hr, 1.0)
    h, w = hr.shape[-2:]
    lr = F.interpolate(blurred[None], size=(h // scale, w // scale), mode="bicubic", antialias=True,
                       align_corners=False)[0]
    return lr.clamp(0, 1)


def _down(x, s, mode="bicubic", antialias=True):
    h, w = x.shape[-2:]
    kw = dict(antialias=antialias, align_corners=False) if mode in ("bicubic", "bilinear") else {}
    return F.interpolate(x[None], size=(h // s, w // s), mode=mode, **kw)[0].clamp(0, 1)


DEGRADE_WRONG = {
    "no_blur": lambda x, s: _down(x, s),
    "blur_after": lambda x, s: degradation.gaussian_blur(_down(x, s), 1.0),
    "no_antialias": lambda x, s: _down(degradation.gaussian_blur(x, 1.0), s, antialias=False),
    "bilinear": lambda x, s: _down(degradation.gaussian_blur(x, 1.0), s, "bilinear"),
    "area": lambda x, s: F.avg_pool2d(degradation.gaussian_blur(x, 1.0)[None], s)[0],
    "sigma_2": lambda x, s: _down(degradation.gaussian_blur(x, 2.0), s),
}


def test_degradation_accepts_the_reference_with_or_without_rounding():
    assert check(ex.check_degradation, ex.reference_degrade).passed
    assert check(ex.check_degradation, degrade_ok).passed
    assert check(ex.check_degradation, lambda x, s: degradation.degrade(x, s)).passed  # 8-bit rounded


@pytest.mark.parametrize("mistake", DEGRADE_WRONG)
def test_degradation_names_the_mistake(mistake):
    assert_names_the_mistake(ex.check_degradation, DEGRADE_WRONG[mistake], mistake, DEGRADE_MISTAKES)


def test_degradation_wrong_size_is_explained():
    r = check(ex.check_degradation, lambda x, s: degrade_ok(x, s)[..., :-1, :])
    assert r.mistake == "shape" and "shrunk by" in r.hint
