"""The command line's file runner (stylize, upscale): one bad input never stops the others."""
from __future__ import annotations

import torch

from perceptual_utils.images import save_image
from perceptual_utils.process_files import process_images


def test_process_images_continues_after_errors(tmp_path, capsys):
    good = save_image(torch.rand(3, 8, 8), tmp_path / "in" / "good.png")
    bad = tmp_path / "in" / "bad.png"
    bad.write_text("nope")
    code = process_images([good, bad, tmp_path / "missing.png"], tmp_path / "out", lambda x: 1 - x, progress=False)
    assert code == 1
    assert (tmp_path / "out" / "good.png").is_file()
    err = capsys.readouterr().err
    assert "bad.png" in err and "missing.png" in err
