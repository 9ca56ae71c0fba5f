"""The SR degradation: bicubic resampling against Pillow, blur + downsampling, evaluation pairs, training pairs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from perceptual_utils.sr.degradation import (bicubic_downsample, bicubic_upsample, crop_to_multiple, degrade,
                                             evaluation_pair, gaussian_blur, make_lr_hr_pair)


def _pil_float_resize(channel: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Pillow's bicubic on a float32 ("F" mode) image, the reference for our resampling."""
    img = Image.fromarray(channel.astype(np.float32), mode="F")
    return np.asarray(img.resize((size_hw[1], size_hw[0]), Image.BICUBIC))


def test_bicubic_matches_pillow_float():
    rng = np.random.default_rng(0)
    img = rng.random((3, 40, 48)).astype(np.float32)
    t = torch.from_numpy(img)
    down = bicubic_downsample(t, 4).numpy()
    up = bicubic_upsample(t, 4, clamp=False).numpy()
    for c in range(3):
        np.testing.assert_allclose(down[c], _pil_float_resize(img[c], (10, 12)), atol=1e-5)
        np.testing.assert_allclose(up[c], _pil_float_resize(img[c], (160, 192)), atol=1e-5)


def test_evaluation_pair_matches_pillow_uint8(shared_data):
    """LR of the benchmark protocol = Pillow's 8-bit BICUBIC reduction, to within one grey level
    (Pillow rounds its intermediate horizontal pass to 8 bits, we round once like MATLAB)."""
    path = shared_data / "sr" / "Set5" / "butterfly.png"
    pil = Image.open(path).convert("RGB")
    hr = torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255).permute(2, 0, 1)
    for scale in (4, 8):
        lr, hr_c = evaluation_pair(hr, scale)
        w, h = hr_c.shape[-1], hr_c.shape[-2]
        assert h % scale == 0 and w % scale == 0 and lr.shape[-2:] == (h // scale, w // scale)
        ref = np.asarray(pil.crop((0, 0, w, h)).resize((w // scale, h // scale), Image.BICUBIC), dtype=np.float64)
        ours = lr.permute(1, 2, 0).double().numpy() * 255
        assert np.allclose(ours, np.round(ours))  # 8-bit values
        assert np.abs(ours - ref).max() <= 1.0 + 1e-4 and np.abs(ours - ref).mean() < 0.3


def test_degrade_matches_reference_computation():
    """Gaussian blur sigma=1 (SciPy, mirror boundary, truncated at 3 sigma) then Pillow bicubic."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(1)
    hr = rng.random((3, 32, 24)).astype(np.float32)
    ours = degrade(torch.from_numpy(hr), 4, sigma=1.0, quantize_output=False).numpy()
    for c in range(3):
        blurred = gaussian_filter(hr[c].astype(np.float64), sigma=1.0, mode="mirror", truncate=3.0)
        ref = np.clip(_pil_float_resize(blurred, (8, 6)), 0, 1)
        np.testing.assert_allclose(ours[c], ref, atol=1e-5)
    quantized = degrade(torch.from_numpy(hr), 4).numpy() * 255
    np.testing.assert_allclose(quantized, np.round(quantized), atol=1e-4)


def test_blur_changes_the_lr_image():
    hr = torch.rand(3, 32, 32)
    assert not torch.allclose(degrade(hr, 4, sigma=1.0), degrade(hr, 4, sigma=0))
    flat = torch.full((3, 16, 16), 0.4)
    assert torch.allclose(gaussian_blur(flat, 1.0), flat, atol=1e-6)  # the kernel sums to 1


def test_degradation_errors():
    with pytest.raises(ValueError, match="multiples"):
        degrade(torch.rand(3, 30, 32), 4)
    with pytest.raises(ValueError, match="sigma"):
        degrade(torch.rand(3, 32, 32), 4, sigma=-1)
    assert crop_to_multiple(torch.rand(3, 31, 45), 8).shape == (3, 24, 40)


def test_lr_hr_pairs_from_the_image_folder(shared_data):
    from perceptual_utils.training_data import ImageFolderDataset

    ds = ImageFolderDataset(shared_data / "train" / "t91", size=64, transform=make_lr_hr_pair(4), seed=3)
    lr, hr = ds[5]
    assert lr.shape == (3, 16, 16) and hr.shape == (3, 64, 64)
    assert torch.equal(lr, degrade(hr, 4))
    lr2, hr2 = ds[5]
    assert torch.equal(hr, hr2)  # deterministic per sample number
