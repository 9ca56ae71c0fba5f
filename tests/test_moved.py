"""Old module paths (``perceptual_utils.style_net``, ``.fetch``, ``.widgets``, ``.optimize``, ...) still import,
with a DeprecationWarning naming the new home (perceptual_utils/_moved.py)."""
from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

from perceptual_utils._moved import MOVED


def _fresh_import(name: str):
    sys.modules.pop(name, None)
    with pytest.warns(DeprecationWarning, match=name.replace(".", r"\.")):
        return importlib.import_module(name)


@pytest.mark.parametrize("old", sorted(MOVED))
def test_every_old_path_imports_with_a_deprecation_warning(old):
    module = _fresh_import(f"perceptual_utils.{old}")
    for new in MOVED[old]:
        target = importlib.import_module(f"perceptual_utils.{new}")
        public = [n for n in vars(target) if not n.startswith("_")]
        assert public and all(getattr(module, n) is not None for n in public[:5])


def test_a_whole_move_is_the_new_module_itself():
    from perceptual_utils.style import net

    assert _fresh_import("perceptual_utils.style_net") is net
    from perceptual_utils.style_net import StyleTransferNet  # the old spelling of a user's script

    assert StyleTransferNet is net.StyleTransferNet


def test_split_modules_find_each_name_in_its_new_home():
    from perceptual_utils.datafiles import example_image
    from perceptual_utils.download.catalogue import fetch_data
    from perceptual_utils.download.downloader import download
    from perceptual_utils.optimization.gatys import gatys_style_transfer
    from perceptual_utils.teaching.panel import ReconstructionPanel
    from perceptual_utils.vgg.cache import get_loss_network

    optimize, fetch, widgets = (_fresh_import(f"perceptual_utils.{m}") for m in ("optimize", "fetch", "widgets"))
    assert optimize.gatys_style_transfer is gatys_style_transfer and optimize.get_loss_network is get_loss_network
    assert fetch.download is download and fetch.fetch_data is fetch_data
    assert widgets.example_image is example_image and widgets.ReconstructionPanel is ReconstructionPanel
    assert "gatys_style_transfer" in dir(optimize)
    with pytest.raises(AttributeError, match="moved to"):
        optimize.no_such_name  # noqa: B018


def test_old_path_does_not_hide_the_public_function_of_the_same_name():
    import perceptual_utils

    _fresh_import("perceptual_utils.stylize")
    _fresh_import("perceptual_utils.upscale")
    assert callable(perceptual_utils.stylize) and callable(perceptual_utils.upscale)
    assert perceptual_utils.stylize.__module__ == "perceptual_utils.style.stylize"


@pytest.mark.slow  # a fresh interpreter imports torch
def test_the_warning_points_at_the_importing_line(tmp_path):
    script = tmp_path / "user_script.py"
    script.write_text("import warnings\nwarnings.simplefilter('always')\nimport perceptual_utils.sr_net\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "user_script.py:3: DeprecationWarning: perceptual_utils.sr_net is deprecated" in out.stderr
    assert "perceptual_utils.sr.net" in out.stderr


def test_new_paths_import_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for new in {n for targets in MOVED.values() for n in targets}:
            importlib.import_module(f"perceptual_utils.{new}")
