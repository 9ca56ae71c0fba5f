"""The exercise checkers: each accepts the reference, says "not attempted" for a blank cell and names
typical mistakes. The wrong answers below are written as a student would write them, independently of
the catalogue inside perceptual_utils.teaching.exercises."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from perceptual_utils import losses
from perceptual_utils.sr import degradation, metrics
from perceptual_utils.teaching import exercises as ex
from perceptual_utils.color import rgb_to_y_bt601


def not_implemented(*args):
    raise NotImplementedError


def returns_none(*args):
    pass


def check(checker, fn):
    return checker(fn, verbose=False)


# ----------------------------------------------------------------------------- shared behaviour

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
    assert r.hint == ex.FEATURE_MISTAKES[mistake][0]


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
    r = check(ex.check_gram_matrix, GRAM_WRONG[mistake])
    assert not r.passed and r.mistake == mistake and r.hint == ex.GRAM_MISTAKES[mistake][0]


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
    r = check(ex.check_style_loss, STYLE_WRONG[mistake])
    assert not r.passed and r.mistake == mistake and r.hint == ex.STYLE_MISTAKES[mistake][0]


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
    r = check(ex.check_total_variation, TV_WRONG[mistake])
    assert not r.passed and r.mistake == mistake and r.hint == ex.TV_MISTAKES[mistake][0]


# ----------------------------------------------------------------------------- residual block

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
    r = check(ex.check_residual_block, RESIDUAL_WRONG[mistake])
    assert not r.passed and r.mistake == mistake and r.hint == ex.RESIDUAL_MISTAKES[mistake][0]


# ----------------------------------------------------------------------------- training step

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
    if mistake in ex.TRAINING_MISTAKES:
        assert r.hint == ex.TRAINING_MISTAKES[mistake][0]
    else:
        assert "gradient" in r.hint


def test_training_step_that_forgets_to_return_is_told_so():
    def no_return(*args):
        step_ok(*args)

    r = check(ex.check_training_step, no_return)
    assert r.attempted and r.mistake == "no_return"


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
    r = check(ex.check_psnr_y, PSNR_WRONG[mistake])
    assert not r.passed and r.mistake == mistake and r.hint == ex.PSNR_MISTAKES[mistake][0]


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
    r = check(ex.check_degradation, DEGRADE_WRONG[mistake])
    assert not r.passed and r.mistake == mistake and r.hint == ex.DEGRADE_MISTAKES[mistake][0]


def test_degradation_wrong_size_is_explained():
    r = check(ex.check_degradation, lambda x, s: degrade_ok(x, s)[..., :-1, :])
    assert r.mistake == "shape" and "shrunk by" in r.hint


# ----------------------------------------------------------------------------- 9. conditional instance norm

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
