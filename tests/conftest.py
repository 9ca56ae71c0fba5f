"""Shared fixtures. The real VGG-16 weights and the shared data are found through
PERCEPTUAL_UTILS_WEIGHTS / PERCEPTUAL_UTILS_DATA (set by .ci/run); notebooks run in the
`quick` profile unless PERCEPTUAL_UTILS_PROFILE says otherwise."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Notebook kernels started by nbval inherit this environment.
os.environ.setdefault("PERCEPTUAL_UTILS_PROFILE", "quick")


def pytest_collection_modifyitems(config, items):
    """The markers of pyproject.toml, applied where they are true, so ``-m "not slow"`` (a quick loop
    while editing) and ``-m "not needs_data"`` (a machine without the shared data) select the rest:
    ``needs_data`` on every test that uses the ``shared_data`` fixture, ``slow`` on the notebooks'
    cells (each notebook starts a kernel) and on tests marked ``@pytest.mark.slow``."""
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.needs_data)
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data root (styles/, content/, sr/, train/)."""
    from perceptual_utils.config import ENV_DATA, data_root

    root = data_root()
    if not (root / "styles").is_dir():
        pytest.skip(f"shared data not found at {root}; set {ENV_DATA}")
    return root


@pytest.fixture(scope="session")
def loss_network():
    """A VGG-16 loss network with real weights, tapping every ReLU up to relu4_3 (shared, frozen)."""
    from perceptual_utils.vgg.network import LossNetwork

    return LossNetwork(["relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3",
                        "relu4_1", "relu4_2", "relu4_3"])


@pytest.fixture
def image_folder(tmp_path):
    """Five small random images and one broken file (training data and the training loop share it)."""
    from perceptual_utils.images import save_image

    g = torch.Generator().manual_seed(0)
    folder = tmp_path / "images"
    for i in range(5):
        save_image(torch.rand(3, 24 + 4 * i, 30, generator=g), folder / f"img{i}.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder
