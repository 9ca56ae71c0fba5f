""".ci/run's choice of weights and data: a setting the user made wins and is never fetched over (issue 37:
the script fetched whenever ../shared was missing, even with PERCEPTUAL_UTILS_DATA/WEIGHTS set)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "run"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _sources(shared: Path, **settings: str) -> list[str]:
    """Source the script (its main does not run then) and call its decision function."""
    env = {k: v for k, v in os.environ.items() if k not in ("PERCEPTUAL_UTILS_WEIGHTS", "PERCEPTUAL_UTILS_DATA")}
    env.update(settings)
    out = subprocess.run(["bash", "-c", f'source "{SCRIPT}" && data_sources "{shared}"'], env=env,
                         capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.splitlines()


@pytest.fixture
def shared(tmp_path) -> Path:
    (tmp_path / "shared" / "weights").mkdir(parents=True)
    (tmp_path / "shared" / "weights" / "vgg16_features.safetensors").write_bytes(b"x")
    (tmp_path / "shared" / "data").mkdir()
    return tmp_path / "shared"


def test_without_settings_or_shared_it_fetches(tmp_path):
    assert _sources(tmp_path / "absent") == ["weights fetch data/weights/vgg16_features.safetensors", "data fetch data"]


def test_shared_is_used_when_present(shared):
    assert _sources(shared) == [f"weights shared {shared}/weights/vgg16_features.safetensors",
                                f"data shared {shared}/data"]


def test_the_users_settings_win_over_shared_and_fetching(shared, tmp_path):
    assert _sources(tmp_path / "absent", PERCEPTUAL_UTILS_WEIGHTS="/mine/w.safetensors",
                    PERCEPTUAL_UTILS_DATA="/mine/data") == ["weights env /mine/w.safetensors", "data env /mine/data"]
    assert _sources(shared, PERCEPTUAL_UTILS_DATA="/mine/data") == [
        f"weights shared {shared}/weights/vgg16_features.safetensors", "data env /mine/data"]
    assert _sources(tmp_path / "absent", PERCEPTUAL_UTILS_WEIGHTS="/mine/w.safetensors") == [
        "weights env /mine/w.safetensors", "data fetch data"]


def test_main_acts_on_every_decision():
    script = SCRIPT.read_text()
    for case in ("weights:fetch) python -m perceptual_utils fetch-weights",
                 "data:fetch) python -m perceptual_utils fetch-data styles sr coco-mini",
                 'weights:*) export PERCEPTUAL_UTILS_WEIGHTS="$path"', 'data:*) export PERCEPTUAL_UTILS_DATA="$path"'):
        assert case in script
    assert 'if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then' in script  # sourcing runs nothing
