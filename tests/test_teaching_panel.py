"""The instructor panel: slider callbacks and the compute button, without a browser."""
from __future__ import annotations

import torch

from perceptual_utils.images import save_image
from perceptual_utils.teaching.panel import ReconstructionPanel
from test_teaching_frames import frames, image  # noqa: F401  (the frames fixtures, shared)


def test_slider_callbacks_swap_precomputed_images(frames):
    fs, _ = frames
    panel = ReconstructionPanel(fs, display_px=32)
    assert panel.current == ("relu1_2", 0.0, 4)
    shown = panel.view.value
    assert shown == panel._png[("relu1_2", 0.0, 4)] and shown[:4] == b"\x89PNG"
    assert panel.show(layer="relu2_2") == panel._png[("relu2_2", 0.0, 4)]
    assert panel.show(iteration=0) == panel._png[("relu2_2", 0.0, 0)]
    assert panel.show(share=1.0) == panel._png[("relu2_2", 1.0, 0)]
    assert panel.current == ("relu2_2", 1.0, 0)
    assert "relu2_2" in panel.status.value
    # Different settings show different pictures.
    assert panel._png[("relu1_2", 0.0, 4)] != panel._png[("relu1_2", 0.0, 0)]


def test_compute_button_uses_path_and_reports_errors(frames, tmp_path):
    fs, _ = frames
    calls = []

    def compute(img):
        calls.append(tuple(img.shape))
        return fs

    panel = ReconstructionPanel(fs, compute=compute, display_px=32)
    assert panel.on_compute() is False and "path" in panel.status.value  # nothing given yet
    panel.path_text.value = str(tmp_path / "missing.png")
    assert panel.on_compute() is False and panel.status.value.startswith("error:")
    save_image(torch.rand(3, 20, 24), tmp_path / "mine.png")
    panel.path_text.value = str(tmp_path / "mine.png")
    panel.show(layer="relu2_2", iteration=1)
    assert panel.on_compute() is True and calls == [(3, 20, 24)]
    assert panel.current == ("relu1_2", 0.0, 4)  # reset onto the new frames
    assert not panel.button.disabled


def test_compute_button_reports_progress(frames, tmp_path):
    fs, _ = frames
    seen = []

    def compute(img, on_progress=None):
        for i in range(3):
            on_progress(i, 3, f"run {i}")
            seen.append(panel.status.value)
        on_progress(3, 3, "done")
        return fs

    panel = ReconstructionPanel(fs, compute=compute, display_px=32)
    save_image(torch.rand(3, 20, 24), tmp_path / "mine.png")
    panel.path_text.value = str(tmp_path / "mine.png")
    assert panel.on_compute() is True
    assert seen == [f"computing frames: run {i + 1} of 3 (run {i})" for i in range(3)]


def test_labels_and_the_button_text_are_not_cut(frames):
    panel = ReconstructionPanel(frames[0], display_px=32)
    for slider in (panel.layer_slider, panel.iteration_slider, panel.share_slider):
        assert slider.style.description_width == "initial"
    assert panel.button.layout.width == "auto"
