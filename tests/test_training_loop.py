"""The shared training loop on a tiny network: loss falls, files written, exact resume, refused
settings, checkpoints by time, and the warm-up a resumed run keeps."""
from __future__ import annotations

import sys
import types

import pytest
import torch
from torch import nn

from perceptual_utils import model_io
from perceptual_utils.training.loop import train_loop
from perceptual_utils.training.settings import FINE_TUNE_WARMUP_STEPS, TrainConfig, TrainSettings
from perceptual_utils.training_data import ImageFolderDataset


class TinyNet(nn.Module):
    """A 2-layer conv net registered as a model kind for these tests only."""

    def __init__(self, channels: int = 4):
        super().__init__()
        self.config = {"channels": channels}
        self.body = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, 3, 3, padding=1))

    def forward(self, x):
        return self.body(x)


@pytest.fixture
def tiny_kind(monkeypatch):
    module = types.ModuleType("tiny_test_models")
    module.TinyNet = TinyNet
    TinyNet.__module__ = "tiny_test_models"
    monkeypatch.setitem(sys.modules, "tiny_test_models", module)
    monkeypatch.setitem(model_io.MODEL_KINDS, "tiny", "tiny_test_models:TinyNet")
    return TinyNet


def smooth_loss(model, batch):
    out = model(batch)
    # Learn a 3x3 box blur: a target a tiny net can reach, so the loss must fall.
    target = nn.functional.avg_pool2d(batch, 3, stride=1, padding=1)
    return {"total": nn.functional.mse_loss(out, target), "mse": nn.functional.mse_loss(out, target)}


def run(folder, out, steps, stop_after=None, seed=0, info=None, loss=smooth_loss, **config_options):
    torch.manual_seed(123)  # same initial weights for every run
    model = TinyNet()
    data = ImageFolderDataset(folder, size=16, seed=seed)
    config = TrainConfig(**{"steps": steps, "batch_size": 2, "lr": 1e-2, "checkpoint_every": 3, "preview_every": 4,
                            "num_workers": 0, "progress": False} | config_options)
    return train_loop(model, data, loss, config, out, training_info=info or {"data": str(folder)},
                      preview_fn=lambda m: m(torch.rand(1, 3, 16, 16)).clamp(0, 1), stop_after=stop_after)


def test_loss_falls_and_files_written(tiny_kind, image_folder, tmp_path):
    with pytest.warns(UserWarning, match="broken.jpg"):
        result = run(image_folder, tmp_path / "run", steps=12)
    losses = [row["total"] for row in result.history]
    assert len(losses) == 12
    assert sum(losses[-3:]) < sum(losses[:3])
    assert (tmp_path / "run" / "checkpoint.safetensors").is_file()
    assert (tmp_path / "run" / "previews" / "step_000004.jpg").is_file()
    model = model_io.load_model(result.model_path, kind="tiny")
    assert model.training_info["steps_done"] == 12


def test_resume_is_exact(tiny_kind, image_folder, tmp_path):
    import warnings

    warnings.simplefilter("ignore")
    straight = run(image_folder, tmp_path / "a", steps=10)
    first = run(image_folder, tmp_path / "b", steps=10, stop_after=4)
    assert first.model_path is None and len(first.history) == 4
    resumed = run(image_folder, tmp_path / "b", steps=10)
    assert resumed.resumed_from == 4
    assert [r["total"] for r in resumed.history] == [r["total"] for r in straight.history]


def test_warmup_is_recorded_only_when_used_and_resumes_exactly(tiny_kind, image_folder, tmp_path):
    import warnings

    warnings.simplefilter("ignore")
    plain = run(image_folder, tmp_path / "plain", steps=6)
    assert "warmup_steps" not in model_io.load_model(plain.model_path, kind="tiny").training_info
    straight = run(image_folder, tmp_path / "a", steps=6, warmup_steps=3)
    assert model_io.load_model(straight.model_path, kind="tiny").training_info["warmup_steps"] == 3
    assert [r["total"] for r in straight.history] != [r["total"] for r in plain.history]
    run(image_folder, tmp_path / "b", steps=6, warmup_steps=3, stop_after=2)
    resumed = run(image_folder, tmp_path / "b", steps=6, warmup_steps=3)
    assert [r["total"] for r in resumed.history] == [r["total"] for r in straight.history]


def test_a_resumed_fine_tune_keeps_the_warm_up_its_checkpoint_recorded(tiny_kind, image_folder, tmp_path):
    """A fine-tune started without a warm-up (before it became the default) resumes without one,
    instead of being refused for a changed setting; a given --warmup-steps still wins."""
    import warnings

    warnings.simplefilter("ignore")
    run(image_folder, tmp_path / "plain", steps=6, stop_after=3)
    run(image_folder, tmp_path / "warm", steps=6, warmup_steps=4, stop_after=3)
    fine_tune = TrainSettings(init_from="earlier.safetensors")
    assert fine_tune.resolved_warmup_steps(tmp_path / "plain") == 0
    assert fine_tune.resolved_warmup_steps(tmp_path / "warm") == 4
    assert fine_tune.resolved_warmup_steps(tmp_path / "new") == FINE_TUNE_WARMUP_STEPS
    fresh = TrainSettings(init_from="earlier.safetensors", resume=False)
    assert fresh.resolved_warmup_steps(tmp_path / "plain") == FINE_TUNE_WARMUP_STEPS  # starts afresh
    given = TrainSettings(init_from="earlier.safetensors", warmup_steps=2)
    assert given.resolved_warmup_steps(tmp_path / "plain") == 2


def test_resume_refuses_other_settings(tiny_kind, image_folder, tmp_path):
    import warnings

    warnings.simplefilter("ignore")
    run(image_folder, tmp_path / "c", steps=6, stop_after=3)
    with pytest.raises(model_io.ModelFileError, match="different settings"):
        run(image_folder, tmp_path / "c", steps=6, info={"data": "elsewhere"})


def test_checkpoints_by_time_too_so_a_crash_loses_little(tiny_kind, image_folder, tmp_path, monkeypatch):
    import warnings

    from perceptual_utils.training import loop

    warnings.simplefilter("ignore")
    saved_steps = []
    real_save = loop.save_checkpoint
    monkeypatch.setattr(loop, "save_checkpoint",
                        lambda path, model, opt, step, **kw: (saved_steps.append(step), real_save(path, model, opt,
                                                                                                  step, **kw)))
    # checkpoint_every far away: only the time rule (here: any time at all) writes checkpoints mid-run
    run(image_folder, tmp_path / "t", steps=5, checkpoint_every=100, checkpoint_minutes=1e-9)
    assert saved_steps == [1, 2, 3, 4, 5]
    saved_steps.clear()
    run(image_folder, tmp_path / "s", steps=5, checkpoint_every=100, checkpoint_minutes=0)
    assert saved_steps == [5]  # 0 turns the time rule off: the final checkpoint only

    # A crash (not Ctrl-C, so no checkpoint on the way out) at the 5th step: the run resumes from the
    # last time-based checkpoint, and exactly.
    calls = []

    def crashing_loss(model, batch):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("simulated crash")
        return smooth_loss(model, batch)

    straight = run(image_folder, tmp_path / "a", steps=8)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(image_folder, tmp_path / "b", steps=8, loss=crashing_loss, checkpoint_every=100, checkpoint_minutes=1e-9)
    resumed = run(image_folder, tmp_path / "b", steps=8, checkpoint_every=100, checkpoint_minutes=1e-9)
    assert resumed.resumed_from == 4
    assert [r["total"] for r in resumed.history] == [r["total"] for r in straight.history]
