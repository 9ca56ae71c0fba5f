"""The flicker measure: known camera paths, exact warps, and what the temporal error does and does not count."""
from __future__ import annotations

import pytest
import torch

from perceptual_utils.flicker import (MOTIONS, camera_path, clip_flicker, fit_photo, render_clip, temporal_error,
                                      warp_previous)

SIZE = (24, 32)


@pytest.fixture()
def photo():
    g = torch.Generator().manual_seed(0)
    base = torch.rand(3, 12, 16, generator=g)  # smooth-ish content with real detail, like a photo
    return torch.nn.functional.interpolate(base[None], size=(60, 80), mode="bilinear", align_corners=False)[0]


def test_integer_pan_of_a_photo_has_no_error(photo):
    path = camera_path("pan_int", 5)
    clip = render_clip(photo, path, SIZE)
    assert clip.shape == (5, 3, *SIZE)
    assert temporal_error(clip, path) < 1e-3
    # ... while consecutive frames do differ (the camera moved), and the wrong motion is caught
    assert (clip[1:] - clip[:-1]).abs().mean() * 255 > 5
    assert temporal_error(clip, camera_path("pan_subpixel", 5)) > 5


def test_pan_hides_the_columns_that_entered(photo):
    path = camera_path("pan_int", 2)
    _, visible = warp_previous(render_clip(photo, path, SIZE)[0], path[0], path[1])
    assert int(visible.sum()) == SIZE[0] * (SIZE[1] - 2)  # 2 px per frame: the last 2 columns are new
    assert not visible[:, -2:].any()


@pytest.mark.parametrize("motion", MOTIONS)
def test_a_pointwise_stylisation_adds_no_flicker_and_noise_does(photo, motion):
    result = clip_flicker(lambda frames: 1 - frames, photo, motions=[motion], frames=4, size=SIZE)[motion]
    # 1 - x commutes with the (linear) warp: exactly the photos' own error, and the still video's
    assert result["stylised"] == pytest.approx(result["photo"], abs=1e-4)
    assert result["still"] == pytest.approx(result["photo"], abs=1e-4)
    g = torch.Generator().manual_seed(1)
    noisy = clip_flicker(lambda f: (f + 0.1 * torch.randn(f.shape, generator=g)).clamp(0, 1), photo,
                         motions=[motion], frames=4, size=SIZE)[motion]
    assert noisy["stylised"] > result["photo"] + 10  # fresh noise each frame: about 0.1 * 255 * sqrt(2/pi) * sqrt(2)


def test_jitter_is_seeded_and_paths_are_checked(photo):
    assert torch.equal(camera_path("jitter", 4, seed=3), camera_path("jitter", 4, seed=3))
    assert not torch.equal(camera_path("jitter", 4, seed=3), camera_path("jitter", 4, seed=4))
    with pytest.raises(ValueError, match="unknown motion"):
        camera_path("dolly", 4)
    with pytest.raises(ValueError, match="at least 2 frames"):
        camera_path("zoom", 1)
    with pytest.raises(ValueError, match="leaves"):
        render_clip(photo, camera_path("pan_int", 40), SIZE)  # 78 px of pan: more than the photo holds
    assert min(fit_photo(photo, SIZE).shape[-2:]) >= 1.5 * SIZE[0]
