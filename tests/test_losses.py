"""The losses against naive loop-based versions of the paper's formulas."""
from __future__ import annotations

import pytest
import torch

from perceptual_utils.losses import (
    LossWeights,
    PerceptualLoss,
    feature_reconstruction_loss,
    gram_matrix,
    pixel_loss,
    style_reconstruction_loss,
    total_variation_loss,
)

torch.set_default_dtype(torch.float32)


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---- naive references: explicit loops over every index, straight from the formulas ----------

def naive_feature_loss(a: torch.Tensor, b: torch.Tensor) -> float:
    """(1/B) sum_b ||a_b - b_b||^2 / (C H W)."""
    B, C, H, W = a.shape
    total = 0.0
    for n in range(B):
        s = 0.0
        for c in range(C):
            for i in range(H):
                for j in range(W):
                    s += float(a[n, c, i, j] - b[n, c, i, j]) ** 2
        total += s / (C * H * W)
    return total / B


def naive_gram(x: torch.Tensor) -> torch.Tensor:
    """G[c, c'] = sum_{h,w} x[c,h,w] x[c',h,w] / (C H W) for each image."""
    B, C, H, W = x.shape
    g = torch.zeros(B, C, C, dtype=torch.float64)
    for n in range(B):
        for c in range(C):
            for d in range(C):
                s = 0.0
                for i in range(H):
                    for j in range(W):
                        s += float(x[n, c, i, j]) * float(x[n, d, i, j])
                g[n, c, d] = s / (C * H * W)
    return g


def naive_style_loss(feats: dict, target_feats: dict, weights: dict) -> float:
    """sum_j w_j (1/B) sum_b ||G_j(y_b) - G_j(s)||_F^2."""
    total = 0.0
    for name, f in feats.items():
        g, gt = naive_gram(f), naive_gram(target_feats[name])[0]
        B, C, _ = g.shape
        per = 0.0
        for n in range(B):
            for c in range(C):
                for d in range(C):
                    per += float(g[n, c, d] - gt[c, d]) ** 2
        total += weights.get(name, 1.0) * per / B
    return total


def naive_tv(x: torch.Tensor) -> float:
    B, C, H, W = x.shape
    dh = sum(float(x[n, c, i + 1, j] - x[n, c, i, j]) ** 2
             for n in range(B) for c in range(C) for i in range(H - 1) for j in range(W))
    dw = sum(float(x[n, c, i, j + 1] - x[n, c, i, j]) ** 2
             for n in range(B) for c in range(C) for i in range(H) for j in range(W - 1))
    return dh / (B * C * (H - 1) * W) + dw / (B * C * H * (W - 1))


# ---- tests -------------------------------------------------------------------------------------

def test_feature_reconstruction_loss_matches_naive():
    a, b = rand(2, 3, 4, 5, seed=1), rand(2, 3, 4, 5, seed=2)
    assert feature_reconstruction_loss(a, b).item() == pytest.approx(naive_feature_loss(a, b), rel=1e-10)


def test_pixel_loss_matches_naive():
    a, b = rand(2, 3, 5, 4, seed=3), rand(2, 3, 5, 4, seed=4)
    assert pixel_loss(a, b).item() == pytest.approx(naive_feature_loss(a, b), rel=1e-10)


def test_gram_matrix_matches_naive_symmetric_and_normalised():
    x = rand(2, 4, 3, 5, seed=5)
    g = gram_matrix(x).double()
    assert g.shape == (2, 4, 4)
    torch.testing.assert_close(g, naive_gram(x), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(g, g.transpose(1, 2))
    # normalisation by C*H*W: a constant feature map of ones has Gram entries exactly 1/C
    ones = torch.ones(1, 4, 6, 7)
    torch.testing.assert_close(gram_matrix(ones), torch.full((1, 4, 4), 1 / 4))
    # and doubling the spatial size of a tiled map leaves the Gram matrix unchanged
    torch.testing.assert_close(gram_matrix(x.repeat(1, 1, 2, 2)).double(), g, rtol=1e-5, atol=1e-7)


def test_gram_matrix_rejects_wrong_rank():
    with pytest.raises(ValueError, match="B, C, H, W"):
        gram_matrix(torch.rand(3, 4, 4))


def test_style_reconstruction_loss_matches_naive_with_layer_weights():
    feats = {"a": rand(2, 3, 4, 4, seed=6), "b": rand(2, 5, 2, 3, seed=7)}
    style = {"a": rand(1, 3, 6, 5, seed=8), "b": rand(1, 5, 3, 3, seed=9)}  # sizes may differ
    weights = {"a": 0.5, "b": 2.0}
    targets = {k: gram_matrix(v) for k, v in style.items()}
    got = style_reconstruction_loss(feats, targets, weights).item()
    assert got == pytest.approx(naive_style_loss(feats, style, weights), rel=1e-5)
    unweighted = style_reconstruction_loss(feats, targets).item()
    assert unweighted == pytest.approx(naive_style_loss(feats, style, {}), rel=1e-5)


def test_style_loss_errors():
    with pytest.raises(KeyError, match="'b'"):
        style_reconstruction_loss({"a": torch.rand(1, 2, 3, 3)}, {"b": torch.rand(1, 2, 2)})
    with pytest.raises(ValueError, match="no style layers"):
        style_reconstruction_loss({"a": torch.rand(1, 2, 3, 3)}, {})
    with pytest.raises(ValueError, match="shapes differ"):
        style_reconstruction_loss({"a": torch.rand(1, 2, 3, 3)}, {"a": torch.rand(1, 3, 3)})


def test_total_variation_loss_matches_naive():
    x = rand(2, 3, 5, 6, seed=10)
    assert total_variation_loss(x).item() == pytest.approx(naive_tv(x), rel=1e-10)
    assert total_variation_loss(torch.full((1, 3, 8, 8), 0.3)).item() == 0.0


def test_batched_and_broadcast_targets():
    a = rand(3, 2, 4, 4, seed=11)
    b = rand(1, 2, 4, 4, seed=12)
    per_image = [feature_reconstruction_loss(a[i:i + 1], b).item() for i in range(3)]
    assert feature_reconstruction_loss(a, b).item() == pytest.approx(sum(per_image) / 3, rel=1e-10)
    with pytest.raises(ValueError, match="shapes differ"):
        feature_reconstruction_loss(a, rand(2, 2, 4, 4))
    with pytest.raises(ValueError, match="shapes differ"):
        pixel_loss(a, rand(3, 2, 4, 5))


def test_losses_are_differentiable():
    x = rand(1, 3, 6, 6, seed=13).requires_grad_(True)
    (feature_reconstruction_loss(x, torch.zeros_like(x)) + total_variation_loss(x)
     + gram_matrix(x).sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# ---- PerceptualLoss with the real VGG-16 (shared session fixture) --------------------------------

LAYERS = ("relu1_2", "relu2_2", "relu3_3")


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 32, 32, generator=g), torch.rand(1, 3, 40, 36, generator=g), torch.rand(1, 3, 32, 32, generator=g)


def test_perceptual_loss_terms_are_consistent(loss_network, images):
    x, style, content = images
    loss = PerceptualLoss(content_weight=2.0, style_weight=3.0, tv_weight=0.5, content_layer="relu2_2",
                          style_layers=LAYERS, loss_network=loss_network)
    loss.set_style(style)
    out = loss(x, content=content.expand(2, -1, -1, -1))
    assert set(out) == {"content", "style", "tv", "total"}
    feats = loss_network(x)
    expected_content = 2.0 * feature_reconstruction_loss(feats["relu2_2"], loss_network(content)["relu2_2"])
    style_feats = loss_network(style)
    expected_style = 3.0 * style_reconstruction_loss(feats, {k: gram_matrix(style_feats[k]) for k in LAYERS})
    torch.testing.assert_close(out["content"], expected_content)
    torch.testing.assert_close(out["style"], expected_style)
    torch.testing.assert_close(out["tv"], 0.5 * total_variation_loss(x))
    torch.testing.assert_close(out["total"], out["content"] + out["style"] + out["tv"])
    # set_content caches the same target as passing it per call
    loss.set_content(content)
    torch.testing.assert_close(loss(x)["content"], out["content"])


def test_perceptual_loss_gradient_reaches_image(loss_network, images):
    x, style, _ = images
    loss = PerceptualLoss(content_layer=None, style_layers=LAYERS, tv_weight=0.0, loss_network=loss_network)
    loss.set_style(style)
    x = x.clone().requires_grad_(True)
    loss(x)["total"].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_set_style_blend(loss_network, images):
    _, style, other = images
    loss = PerceptualLoss(content_layer=None, style_layers=LAYERS, loss_network=loss_network)
    loss.set_style([style[0], other[0]], blend_weights=[3.0, 1.0])
    fa, fb = loss_network(style), loss_network(other)
    for name in LAYERS:
        expected = 0.75 * gram_matrix(fa[name]) + 0.25 * gram_matrix(fb[name])
        torch.testing.assert_close(loss.target_grams[name], expected)
    loss.set_style([style[0], other[0]], blend_weights=[1.0, 0.0])  # weight 0: only the first counts
    torch.testing.assert_close(loss.target_grams["relu1_2"], gram_matrix(fa["relu1_2"]))


def test_perceptual_loss_errors(loss_network, images):
    x, style, _ = images
    loss = PerceptualLoss(content_layer=None, style_layers=LAYERS, tv_weight=0.0, loss_network=loss_network)
    with pytest.raises(RuntimeError, match="nothing to compute"):
        loss(x)
    with pytest.raises(ValueError, match="blend_weights"):
        loss.set_style([style[0]], blend_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="blend_weights"):
        loss.set_style([style[0]], blend_weights=[-1.0])
    with pytest.raises(ValueError, match="at least one"):
        loss.set_style([])
    with pytest.raises(ValueError, match="does not tap"):
        PerceptualLoss(style_layers=("relu5_3",), loss_network=loss_network)
    with pytest.raises(ValueError, match="unknown VGG-16 layer"):
        PerceptualLoss(style_layers=("relu9_9",), loss_network=loss_network)


def test_loss_weights_are_the_one_place_of_the_defaults():
    import inspect

    defaults = LossWeights()
    assert defaults.as_dict() == {"content_weight": 1.0, "style_weight": 5.0, "tv_weight": 1.0}
    params = inspect.signature(PerceptualLoss.__init__).parameters
    assert {k: params[k].default for k in defaults.as_dict()} == defaults.as_dict()
    assert defaults.updated(style_weight=2, tv_weight=None) == LossWeights(style_weight=2.0)
    with pytest.raises(Exception):  # frozen: a default cannot be changed by accident
        defaults.style_weight = 3.0


def test_perceptual_loss_from_weights_and_the_vgg_file_argument(loss_network):
    loss = PerceptualLoss.from_weights(LossWeights(content_weight=2.0), style_layers=["relu1_2"],
                                       loss_network=loss_network)
    assert loss.weights == LossWeights(content_weight=2.0)
    control = PerceptualLoss(content_layer="relu1_2", style_layers=["relu1_2"], vgg_weights="random")
    assert control.loss_network.weights_path is None  # "random": the untrained control network
    with pytest.raises(TypeError, match="unexpected"):
        PerceptualLoss(colour_weight=1.0)


# ----------------------------------------------------------------------------- grid jitter

def test_jittered_crop_cuts_output_and_photo_at_one_random_offset_below_the_jitter():
    from perceptual_utils.losses import jittered_crop

    h, w = 20, 24
    rows = torch.arange(h, dtype=torch.float).view(1, 1, h, 1).expand(2, 3, h, w)
    cols = torch.arange(w, dtype=torch.float).view(1, 1, 1, w).expand(2, 3, h, w)
    same = jittered_crop(rows, rows, 0)
    assert same[0] is rows and same[1] is rows  # 0: the paper's loss, nothing cut
    torch.manual_seed(0)
    offsets = set()
    for _ in range(1000):
        state = torch.get_rng_state()
        out, photo = jittered_crop(rows, cols, 8)
        torch.set_rng_state(state)
        out_cols, _ = jittered_crop(cols, cols, 8)
        assert out.shape == photo.shape == (2, 3, h - 8, w - 8)
        dy, dx = int(out[0, 0, 0, 0]), int(photo[0, 0, 0, 0])
        assert int(out_cols[0, 0, 0, 0]) == dx  # the output and the photo share the offset
        assert torch.equal(out[0, 0, :, 0], torch.arange(dy, dy + h - 8, dtype=torch.float))
        offsets.add((dy, dx))
    assert offsets == {(y, x) for y in range(8) for x in range(8)}  # every phase of VGG's 8-px grid


@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_grid_jitter_must_be_a_whole_number_of_pixels(bad):
    from perceptual_utils.losses import check_grid_jitter

    with pytest.raises(ValueError, match="grid_jitter"):
        check_grid_jitter(bad)


def test_grid_jitter_larger_than_the_crop_is_an_error():
    from perceptual_utils.losses import jittered_crop

    with pytest.raises(ValueError, match="larger"):
        jittered_crop(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), 8)


def test_shift_consistency_loss_charges_only_patterns_fixed_to_the_grid():
    from perceptual_utils.losses import check_shift_weight, shift_consistency_loss

    x = torch.rand(4, 3, 40, 44)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)
    with torch.no_grad():
        # A stride-1 convolution moves with its input: nothing to charge (away from the borders).
        assert float(shift_consistency_loss(conv, x, conv(x))) < 1e-10
    # A pattern fixed to the pixel grid, (-1)^(i+j) of amplitude a, does not move with the input:
    # a shift with dy + dx odd flips its sign everywhere (squared difference 4a^2), an even one does not.
    a = 0.1
    i, j = torch.meshgrid(torch.arange(40), torch.arange(44), indexing="ij")
    pattern = a * (-1.0) ** (i + j)

    def stamped(t):
        return t + pattern[:t.shape[-2], :t.shape[-1]]

    values = set()
    for seed in range(12):
        torch.manual_seed(seed)
        values.add(round(float(shift_consistency_loss(stamped, x, stamped(x))), 6))
    assert values == {0.0, round(4 * a * a, 6)}
    for bad in (-1.0, float("nan"), float("inf"), "1", True):
        with pytest.raises(ValueError, match="shift-consistency weight"):
            check_shift_weight(bad)
    with pytest.raises(ValueError, match="larger than"):
        shift_consistency_loss(conv, torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
