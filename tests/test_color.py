"""Colour conversions: the SR protocol's BT.601 luma against hand-computed values."""
from __future__ import annotations

import pytest
import torch

from perceptual_utils.color import rgb_to_y_bt601


def test_y_channel_hand_values():
    rgb = torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0, 1.0]]).view(3, 1, 5)
    y = rgb_to_y_bt601(rgb).flatten().tolist()
    assert y == pytest.approx([16.0, 235.0, 16 + 65.481, 16 + 128.553, 16 + 24.966])
