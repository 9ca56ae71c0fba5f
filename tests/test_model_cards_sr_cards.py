"""The card of a super-resolution model (perceptual_utils/model_cards/sr_cards.py)."""
from __future__ import annotations

from perceptual_utils.model_cards import sr_cards


def test_an_sr_card_says_when_its_feature_loss_is_not_at_the_papers_layer():
    training = {"task": "super_resolution", "recipe": "cpu", "scale": 4, "loss": "feature", "data": "data/train/coco_mini",
                "lr": 5e-4, "steps": 10, "steps_done": 10, "batch_size": 8, "patch": 96, "sigma": 1.0,
                "resize_short": 256, "train_seconds": 60.0, "layer": "relu3_3"}
    row = {"set": "Set5", "psnr": 29.0, "ssim": 0.8, "lpips": 0.25}
    report = {"rows": {"network": [row], "bicubic": [row | {"psnr": 28.43}]}}
    card = "\n".join(sr_cards.sr_card("x4_feature", {"training": training, "config": {"variant": "modern"}}, report))
    assert "feature loss at relu3_3" in card and "not the paper's relu2_2" in card
    assert "paper (relu2_2 feature loss)" in card and "paper (same loss)" not in card
    paper = "\n".join(sr_cards.sr_card("x4_feature", {"training": training | {"layer": "relu2_2"},
                                                          "config": {"variant": "modern"}}, report))
    assert "relu3_3" not in paper and "paper (same loss)" in paper
