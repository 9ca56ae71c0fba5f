"""What a style run trains on besides its photos: the crop-size schedule."""
from __future__ import annotations

from perceptual_utils.style.data import crop_schedule


def test_crop_schedule():
    assert crop_schedule(1000, 128, 256, 0.15) == [(0, 128), (850, 256)]
    assert crop_schedule(1000, 256, None, 0.0) == [(0, 256)]
    assert crop_schedule(1000, 128, 128, 0.5) == [(0, 128)]
