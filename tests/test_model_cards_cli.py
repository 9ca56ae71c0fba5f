"""``python -m perceptual_utils models`` (perceptual_utils/model_cards/cli.py): the list, --cards, and
one-line errors for options that need --ship."""
from __future__ import annotations

import pytest

from perceptual_utils.cli import main as cli_main
from perceptual_utils.model_cards.writer import render_cards


def test_cards_writes_the_readme_of_the_models_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PERCEPTUAL_UTILS_MODELS", str(tmp_path))
    assert cli_main(["models"]) == 0
    assert "no model files in" in capsys.readouterr().out and not (tmp_path / "README.md").exists()
    assert cli_main(["models", "--cards"]) == 0
    assert capsys.readouterr().out.strip() == f"cards: {tmp_path / 'README.md'}"
    assert (tmp_path / "README.md").read_text() == render_cards(tmp_path)


@pytest.mark.parametrize("argv, message", [
    (["--hardware", "a CPU"], "error: --hardware: only with --ship RUN_FOLDER NAME"),
    (["--note", "x", "--before", "a=b"], "error: --note, --before: only with --ship RUN_FOLDER NAME"),
    (["--ship", "runs/a", "a", "--before", "b=runs/b"], "error: --before: give NAME=RUN_FOLDER for a NAME shipped"),
])
def test_options_that_describe_a_shipped_run_need_it(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PERCEPTUAL_UTILS_MODELS", str(tmp_path))
    assert cli_main(["models", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith(message) and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())  # nothing shipped, no cards written
