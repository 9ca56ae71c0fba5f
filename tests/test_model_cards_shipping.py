"""Shipping a run's model into models/ and refreshing stale metadata (perceptual_utils/model_cards/shipping.py)."""
from __future__ import annotations

import pytest
import torch

from perceptual_utils.errors import CLIError
from perceptual_utils.model_cards import commands, shipping
from perceptual_utils.model_io import load_model, read_model_metadata, save_model, stored_digest
from perceptual_utils.style.net import StyleTransferNet

TRAINING = {"task": "style_transfer", "recipe": "cpu", "style": "/d/data/styles/starry_night_crop.jpg",
            "data": "/d/data/train/coco_mini", "lr": 1e-3, "grid_jitter": 8, "steps": 40, "steps_done": 40,
            "hardware": "x86_64 CPU, 1 threads"}


@pytest.fixture
def models(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    monkeypatch.setenv("PERCEPTUAL_UTILS_MODELS", str(folder))
    return folder


def test_ship_copies_the_run_in_half_precision_with_its_command(tmp_path, models):
    torch.manual_seed(0)
    net = StyleTransferNet("modern")
    run = tmp_path / "runs" / "tiny"
    save_model(net, run / "model.safetensors", training=TRAINING)
    dest = shipping.ship(run, "tiny_ship_test", hardware="AMD EPYC, 1 core", note="for a test")
    assert dest == models / "tiny_ship_test.safetensors"
    t = read_model_metadata(dest)["training"]
    assert t["command"] == commands.command_for(TRAINING) and t["command"].endswith("--steps 40")
    assert t["hardware"] == "AMD EPYC, 1 core" and t["note"] == "for a test"  # the loop's "N threads" replaced
    assert "summary" not in t  # never measured by benchmarks/cpu_recipe.py
    shipped = load_model(dest).state_dict()
    assert all(torch.equal(v.half().float(), shipped[k]) for k, v in net.state_dict().items() if v.is_floating_point())
    with pytest.raises(CLIError, match="--style-names: 2 names for 0 styles"):
        shipping.ship(run, "tiny_ship_test", style_names=["a", "b"])


def test_refresh_rewrites_a_stale_command_and_keeps_the_tensors(models):
    path = save_model(StyleTransferNet("modern"), models / "tiny_refresh_test.safetensors",
                      training=TRAINING | {"command": "python -m perceptual_utils train-style --old-flag"}, half=True)
    digest = stored_digest(path)
    assert shipping.refresh_metadata() == ["tiny_refresh_test.safetensors"]
    assert read_model_metadata(path)["training"]["command"] == commands.command_for(TRAINING)
    assert stored_digest(path) == digest
    load_model(path)  # still passes the digest check
    assert shipping.refresh_metadata() == []  # nothing stale now


def test_queue_wall_seconds_reads_start_and_end_across_midnight(tmp_path):
    log = tmp_path / "queue.log"
    log.write_text("== wave start 23:50:00\nsomething else\n== wave end 00:20:30\n== x4 start 01:00:00\n")
    assert shipping.queue_wall_seconds(log, "wave") == 30 * 60 + 30
    assert shipping.queue_wall_seconds(log, "x4") is None  # never ended
    assert shipping.queue_wall_seconds(None, "wave") is None
