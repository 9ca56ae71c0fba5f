"""PSNR / SSIM / Y channel against hand-computed values and scikit-image; LPIPS against the lpips package."""
from __future__ import annotations

import math

import pytest
import torch

from perceptual_utils.color import rgb_to_y_bt601
from perceptual_utils.sr.metrics import LPIPSMetric, psnr, shave, ssim


def _skimage_ssim(a: torch.Tensor, b: torch.Tensor, border: int = 0) -> float:
    from skimage.metrics import structural_similarity

    ya = shave(rgb_to_y_bt601(a.double())[0], border).numpy()
    yb = shave(rgb_to_y_bt601(b.double())[0], border).numpy()
    return structural_similarity(ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255)


def test_psnr_hand_computed():
    # Grey images: Y = 16 + 219 v, so an RGB offset of 10/219 is exactly 10 Y levels everywhere.
    a = torch.full((3, 20, 20), 0.3)
    b = a + 10 / 219
    assert float(psnr(a, b)) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-6)  # 28.1308 dB
    # RGB PSNR on the 0-255 scale: an offset of 0.1 is 25.5 levels.
    assert float(psnr(a, a + 0.1, y_only=False)) == pytest.approx(10 * math.log10(255**2 / 25.5**2), abs=1e-5)
    assert math.isinf(float(psnr(a, a)))


def test_psnr_border_shave_and_batches():
    a = torch.rand(2, 3, 16, 16)
    b = a.clone()
    b[..., :3, :] = 0  # damage only the top 3 rows
    assert torch.isfinite(psnr(a, b)).all()
    assert torch.isinf(psnr(a, b, shave_border=3)).all()
    assert psnr(a, b).shape == (2,)
    with pytest.raises(ValueError, match="shape"):
        psnr(a, b[..., :15])
    with pytest.raises(ValueError, match="too small"):
        psnr(a, b, shave_border=8)


@pytest.mark.parametrize("border", [0, 4])
def test_ssim_matches_scikit_image(border):
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 48, 40, generator=g)
    b = (a + 0.08 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    assert float(ssim(a, b, shave_border=border)) == pytest.approx(_skimage_ssim(a, b, border), abs=1e-9)


def test_ssim_on_a_real_image(shared_data):
    from perceptual_utils.sr.degradation import bicubic_upsample, evaluation_pair
    from perceptual_utils.images import load_image

    lr, hr = evaluation_pair(load_image(shared_data / "sr" / "Set5" / "bird.png"), 4)
    sr = bicubic_upsample(lr, 4)
    ours = float(ssim(sr, hr, shave_border=4))
    assert ours == pytest.approx(_skimage_ssim(sr, hr, 4), abs=1e-9)
    assert 0.5 < ours < 1.0
    assert float(ssim(hr, hr)) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- LPIPS

@pytest.fixture(scope="module")
def lpips_pair():
    """Our LPIPSMetric and lpips.LPIPS with the same (local) VGG-16 trunk, nothing downloaded."""
    lpips = pytest.importorskip("lpips")
    from perceptual_utils.vgg.weights import load_vgg16_features_state, resolve_weights

    ours = LPIPSMetric()
    # pnet_rand=True builds the trunk without downloading torchvision's weights; we load ours.
    ref = lpips.LPIPS(pretrained=True, net="vgg", pnet_rand=True, verbose=False)
    state = load_vgg16_features_state(resolve_weights())
    bounds = (4, 9, 16, 23, 30)  # lpips's slice1..5 end at these torchvision indices
    mapped = {f"slice{next(i for i, e in enumerate(bounds) if int(k.split('.')[0]) < e) + 1}.{k}": v
              for k, v in state.items()}
    ref.net.load_state_dict(mapped)
    return ours, ref.eval()


def test_lpips_matches_the_lpips_package(lpips_pair, shared_data):
    from perceptual_utils.images import load_image

    ours, ref = lpips_pair
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 64, 72, generator=g)
    b = (a + 0.1 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    hr = load_image(shared_data / "sr" / "Set5" / "baby.png")[:, :96, :96]
    blurred = torch.nn.functional.avg_pool2d(hr.unsqueeze(0), 3, 1, 1, count_include_pad=False)
    with torch.no_grad():
        for x, y in ((a, b), (hr.unsqueeze(0), blurred)):
            expected = ref(x, y, normalize=True).flatten()  # normalize=True: inputs in [0, 1]
            torch.testing.assert_close(ours(x, y), expected, rtol=1e-4, atol=1e-6)
        assert float(ours(a[:1], a[:1])) == pytest.approx(0.0, abs=1e-6)
        # More distortion, larger distance.
        c = (a + 0.3 * torch.randn(a.shape, generator=g)).clamp(0, 1)
        assert (ours(a, c) > ours(a, b)).all()


def test_lpips_bad_weights_file(tmp_path):
    bad = tmp_path / "lin.pth"
    torch.save({"lin0.model.1.weight": torch.zeros(1, 3, 1, 1)}, bad)
    with pytest.raises(ValueError, match="LPIPS-VGG"):
        LPIPSMetric(lin_weights=bad)
