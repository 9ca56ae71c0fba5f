"""The thread switch: ``--threads``, ``$PERCEPTUAL_UTILS_THREADS`` and the measured default."""
from __future__ import annotations

import pytest
import torch

from perceptual_utils import cli, config


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_default_leaves_one_core_to_the_rest_of_the_machine(monkeypatch):
    monkeypatch.delenv(config.ENV_THREADS, raising=False)
    for cores, expected in ((1, 1), (2, 1), (8, 7)):
        monkeypatch.setattr(config, "available_cores", lambda cores=cores: cores)
        assert config.default_threads() == config.resolve_threads() == expected


def test_argument_beats_environment_beats_default(monkeypatch, restore_threads):
    monkeypatch.setenv(config.ENV_THREADS, "2")
    assert config.resolve_threads() == 2 and config.resolve_threads(1) == 1
    assert config.set_threads() == 2 and torch.get_num_threads() == 2


@pytest.mark.parametrize("env", ["0", "-1", "two", "1.5"])
def test_bad_environment_value_is_one_clear_error(monkeypatch, env):
    monkeypatch.setenv(config.ENV_THREADS, env)
    with pytest.raises(config.ConfigError, match=config.ENV_THREADS):
        config.resolve_threads()


@pytest.mark.parametrize("bad", [0, -3, True, 1.0])
def test_bad_thread_count_is_refused(bad):
    with pytest.raises(config.ConfigError, match="threads"):
        config.resolve_threads(bad)


def test_cli_sets_the_threads_before_the_command_runs(monkeypatch, restore_threads, tmp_path, capsys):
    monkeypatch.delenv(config.ENV_THREADS, raising=False)
    torch.set_num_threads(2)
    seen = {}

    def fake(args):
        seen["threads"] = torch.get_num_threads()
        return 0

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["upscale"].set_defaults(func=fake)
    assert cli.main(["upscale", "--model", "m", "--input", "i", "--output", "o.png", "--threads", "1"]) == 0
    assert seen["threads"] == 1
    monkeypatch.setattr(config, "available_cores", lambda: 2)
    assert cli.main(["upscale", "--model", "m", "--input", "i", "--output", "o.png"]) == 0
    assert seen["threads"] == 1  # the default on a 2-core machine
