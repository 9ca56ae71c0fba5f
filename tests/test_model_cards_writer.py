"""models/README.md, generated (perceptual_utils/model_cards/writer.py)."""
from __future__ import annotations

import pytest

from perceptual_utils.model_cards import writer
from perceptual_utils.shipped_models import models_dir


def test_the_committed_cards_are_what_the_model_files_and_results_give():
    """A model shipped, re-measured or refreshed without regenerating its card fails here."""
    assert writer.render_cards() == (models_dir() / "README.md").read_text(), \
        "models/README.md is stale: run python -m perceptual_utils models --cards"


def test_cards_of_an_empty_folder_have_the_sections_and_no_cards(tmp_path):
    text = writer.render_cards(tmp_path)
    assert text.startswith("# Shipped models\n") and "## Style transfer\n\n## Super-resolution\n" in text
    assert "###" not in text and "Teaching models" not in text


def test_write_cards_replaces_the_readme_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("PERCEPTUAL_UTILS_MODELS", str(tmp_path))
    readme = tmp_path / "README.md"
    readme.write_text("old cards\n")
    monkeypatch.setattr(writer, "render_cards", lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        writer.write_cards()
    assert readme.read_text() == "old cards\n" and sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]
    monkeypatch.undo()
    monkeypatch.setenv("PERCEPTUAL_UTILS_MODELS", str(tmp_path))
    assert writer.write_cards() == readme
    assert readme.read_text() == writer.render_cards(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]  # no temporary left behind
