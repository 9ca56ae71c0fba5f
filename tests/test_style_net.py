"""The style transfer network: shapes for any size, parameter count, BN folding."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from perceptual_utils.style.net import (StyleTransferNet, activation_shapes, conv_macs, fold_batch_norm,
                                        receptive_field_growth, reflect_pad)


@pytest.mark.parametrize("variant", ["paper", "modern"])
@pytest.mark.parametrize("hw", [(32, 32), (37, 53), (64, 63), (1, 1), (5, 130)])
def test_output_size_equals_input_size(variant, hw):
    torch.manual_seed(0)
    net = StyleTransferNet(variant, channels=8, num_residual=2).eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, *hw))
    assert y.shape == (2, 3, *hw)
    assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0


def test_paper_parameter_count_and_shapes():
    net = StyleTransferNet("paper")
    assert sum(p.numel() for p in net.parameters()) == 1_677_635  # "about 1.68 M"
    assert net.input_padding == 40
    # The supplementary's table for a 256x256 input.
    shapes = {name: shape for name, _, shape, _ in activation_shapes(net, 256)}
    assert shapes["pad"] == (3, 336, 336)
    assert shapes["down.2"] == (128, 84, 84)
    assert shapes["residual.4"] == (128, 64, 64)
    assert shapes["up.1"] == (32, 256, 256)
    assert shapes["crop"] == (3, 256, 256)


def test_variants_use_their_building_blocks():
    paper, modern = StyleTransferNet("paper"), StyleTransferNet("modern", channels=16)
    assert any(isinstance(m, nn.ConvTranspose2d) for m in paper.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in paper.modules())
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in modern.modules())
    assert any(isinstance(m, nn.InstanceNorm2d) for m in modern.modules())
    assert modern.input_padding == 0
    # config round-trips to the same architecture
    rebuilt = StyleTransferNet(**modern.config)
    assert rebuilt.config == modern.config
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in modern.parameters()]


def test_bad_options_raise():
    with pytest.raises(ValueError, match="variant"):
        StyleTransferNet("fancy")
    with pytest.raises(ValueError, match="expects RGB"):
        StyleTransferNet(channels=4, num_residual=1)(torch.rand(1, 1, 16, 16))


def test_output_pixel_aligned_with_input_pixel():
    """Top-left anchoring: cropping the input's bottom/right rows leaves the remaining output
    pixels far from that edge unchanged (no misalignment from the multiple-of-4 padding)."""
    torch.manual_seed(1)
    net = StyleTransferNet("modern", channels=8, num_residual=1, norm="none").eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        full, part = net(x), net(x[..., :61, :61])
    assert torch.allclose(full[..., :20, :20], part[..., :20, :20], atol=1e-5)


def _randomise_bn(net: nn.Module) -> None:
    # Non-trivial running statistics and affine parameters, so folding has something to fold.
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(2, 3, 48, 48))
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
    net.eval()


def test_fold_batch_norm_matches_unfolded():
    torch.manual_seed(0)
    net = StyleTransferNet("paper", channels=8, num_residual=2)
    _randomise_bn(net)
    folded = fold_batch_norm(net)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())  # original untouched
    convt = [m for m in folded.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert convt and all(m.bias is not None for m in convt)  # transposed convs folded too
    x = torch.rand(1, 3, 45, 67)
    with torch.no_grad():
        assert torch.allclose(net(x), folded(x), atol=1e-5)


def test_fold_without_bn_is_a_copy():
    net = StyleTransferNet("modern", channels=4, num_residual=1).eval()
    folded = fold_batch_norm(net)
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        assert torch.equal(net(x), folded(x))


def test_reflect_pad_larger_than_image():
    x = torch.arange(6.0).view(1, 1, 2, 3)
    y = reflect_pad(x, 7, 5, 4, 9)
    assert y.shape == (1, 1, 2 + 13, 3 + 12)
    assert torch.equal(y[..., 4:6, 7:10], x)


def test_receptive_field_and_compute():
    net = StyleTransferNet("paper")
    rf = dict(receptive_field_growth(net.layer_spec()))
    assert rf["c9s1-3"] == 109
    flat = [(n, k, 1) for n, k, _ in net.layer_spec()]
    assert dict(receptive_field_growth(flat))["c9s1-3"] == 1 + 8 + 2 + 2 + 10 * 2 + 2 + 2 + 8
    macs = dict((n, m) for n, _, m in conv_macs(net, 256))
    # a residual 3x3 conv at 1/4 resolution: 9 * H * W * C^2 with C = 128 (first one: 82x82 output)
    assert macs["residual.0.body.0.0"] == 9 * 82 * 82 * 128 * 128


def test_bilinear_upsampling_is_an_option_with_a_wider_receptive_field():
    nearest = StyleTransferNet("modern", channels=8, num_residual=1)
    bilinear = StyleTransferNet("modern", channels=8, num_residual=1, upsample="bilinear")
    assert [p.shape for p in bilinear.parameters()] == [p.shape for p in nearest.parameters()]
    assert StyleTransferNet(**bilinear.config).config["upsample"] == "bilinear"
    ups = [m for m in bilinear.modules() if isinstance(m, nn.Upsample)]
    assert len(ups) == 2 and all(m.mode == "bilinear" and m.align_corners is False for m in ups)
    rf = dict(receptive_field_growth(bilinear.layer_spec()))["c9s1-3"]
    # each interpolation reads one more coarse pixel each side: 2 * 4 px before the first, 2 * 2 px before the second
    assert rf == dict(receptive_field_growth(nearest.layer_spec()))["c9s1-3"] + 8 + 4
    with torch.no_grad():
        y = bilinear.eval()(torch.rand(1, 3, 37, 53))
    assert y.shape == (1, 3, 37, 53)


def test_checkerboard_energy_separates_transposed_from_nearest():
    from perceptual_utils.style.net import checkerboard_energy

    torch.manual_seed(0)
    flat = torch.full((1, 3, 64, 64), 0.5)
    board = flat + 0.1 * (torch.arange(64)[:, None] + torch.arange(64)[None, :]).remainder(2)
    assert checkerboard_energy(board) > 0.9
    assert checkerboard_energy(torch.rand(3, 64, 64)) < 0.01
    with torch.no_grad():
        transposed = StyleTransferNet("paper", channels=8, num_residual=1).eval()(flat)
        nearest = StyleTransferNet("paper", channels=8, num_residual=1, upsample="nearest").eval()(flat)
    assert checkerboard_energy(transposed) > 10 * checkerboard_energy(nearest)


@pytest.mark.parametrize("variant", ["paper", "modern"])
def test_global_residual_starts_as_the_identity_and_clamps_in_eval(variant):
    torch.manual_seed(0)
    net = StyleTransferNet(variant, channels=8, num_residual=1, global_residual=True)
    x = torch.rand(2, 3, 21, 30)
    with torch.no_grad():
        assert torch.equal(net.eval()(x), x)  # zero-initialised last conv: exactly the photo
        last = next(m for m in net.output.modules() if isinstance(m, nn.Conv2d))
        last.bias.fill_(0.5)  # push every pixel past 1 where x > 0.5
        assert float(net.train()(x).max()) > 1.0  # unclamped while training (gradient kept)
        y = net.eval()(x)
    assert 0.0 <= float(y.min()) and float(y.max()) == 1.0
    assert torch.allclose(y, (x + 0.5).clamp(0, 1))
    assert net.config["global_residual"] is True
    assert StyleTransferNet(**net.config).config == net.config
    # Off by default, and then absent from the config (older model files stay as they were).
    assert "global_residual" not in StyleTransferNet(variant, channels=8, num_residual=1).config


def test_shift_inconsistency_is_zero_for_an_equivariant_network_and_grows_with_a_grid_pattern():
    from perceptual_utils.style.evaluation import shift_inconsistency

    photo = torch.rand(3, 48, 52)
    conv = nn.Conv2d(3, 3, 3, padding=1)
    assert shift_inconsistency(conv, photo) < 1e-10
    i, j = torch.meshgrid(torch.arange(48), torch.arange(52), indexing="ij")
    pattern = 0.1 * (-1.0) ** (i + j)

    class Stamped(nn.Module):
        def forward(self, x):
            return x + pattern[:x.shape[-2], :x.shape[-1]]

    # Of the 15 shifts, the 8 with dy + dx odd flip the pattern: squared difference 4 * 0.1^2 there.
    assert shift_inconsistency(Stamped(), photo) == pytest.approx(8 / 15 * 4 * 0.01, rel=1e-5)
    # A 4-px-grid network is equivariant to 4-px shifts only: its inconsistency is not 0.
    torch.manual_seed(0)
    net = StyleTransferNet("modern", channels=8, num_residual=1).train()
    assert shift_inconsistency(net, photo) > 1e-6
    assert net.training  # measured in eval mode, then left as it was


def test_flat_bright_area_finds_a_smooth_bright_patch_in_a_textured_image():
    from perceptual_utils.style.evaluation import flat_bright_area, flat_bright_mask, flat_dark_area

    g = torch.Generator().manual_seed(0)
    textured = 0.35 + 0.3 * torch.rand(3, 192, 192, generator=g)  # strokes everywhere: nothing counts
    assert flat_bright_area(textured) == 0.0
    yy, xx = torch.meshgrid(torch.arange(192.0), torch.arange(192.0), indexing="ij")
    disc = (yy - 96) ** 2 + (xx - 64) ** 2 < 40 ** 2  # 14% of the image
    blob = torch.where(disc, torch.full_like(textured, 0.95), textured)
    # the disc, less a rim about 10 px wide where the contrast window still reaches the texture
    assert 0.3 * disc.float().mean() < flat_bright_area(blob) < disc.float().mean()
    mask = flat_bright_mask(blob)
    assert mask[96, 64] and not mask[96, 160] and not (mask & ~disc).any()
    # the same bright disc with the image's texture on it, or a smooth but dark one, is no blob
    assert flat_bright_area(torch.where(disc, textured + 0.3, textured).clamp(0, 1)) == 0.0
    dark_blob = torch.where(disc, torch.full_like(textured, 0.05), textured)
    assert flat_bright_area(dark_blob) == 0.0
    # which the dark measure finds, where it finds neither the bright disc nor the texture
    assert 0.3 * disc.float().mean() < flat_dark_area(dark_blob) < disc.float().mean()
    assert flat_dark_area(blob) == 0.0 and flat_dark_area(textured) == 0.0
    with pytest.raises(ValueError, match="RGB"):
        flat_bright_area(textured[:1])
