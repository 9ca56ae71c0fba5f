"""The options every ``train-*`` command shares."""
from __future__ import annotations

import argparse

import pytest

from perceptual_utils.training.cli import add_training_arguments
from perceptual_utils.training.settings import TrainSettings


def test_train_commands_take_a_memory_format():
    p = argparse.ArgumentParser()
    add_training_arguments(p, recipes={"cpu": {}})
    base = ["--out", "x"]
    assert TrainSettings.from_args(p.parse_args(base)).memory_format == "auto"
    assert TrainSettings.from_args(p.parse_args(base + ["--memory-format", "channels-last"])).forced_layout() is True
    with pytest.raises(SystemExit):
        p.parse_args(base + ["--memory-format", "nhwc"])
