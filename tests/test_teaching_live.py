"""The live panel, driven without a display from a video file: frames come out, sliders apply, stop stops."""
from __future__ import annotations

import io
import time

import pytest
import torch
from PIL import Image

pytest.importorskip("cv2")
pytest.importorskip("ipywidgets")

from perceptual_utils.shipped_models import resolve_model  # noqa: E402
from perceptual_utils.teaching.live import (FrameSource, LivePanel, demo_video, frames_per_second,  # noqa: E402
                                            gif_bytes, morph_mixes, open_source)
from perceptual_utils.video import VideoError, probe, write_video  # noqa: E402


@pytest.fixture()
def clip(tmp_path):
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(5, 3, 48, 64, generator=g)
    return write_video([frames], tmp_path / "clip.mp4", fps=10)


def wait_for(condition, seconds=60.0):
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        time.sleep(0.02)
    return condition()


def test_source_reads_loops_and_refuses_bad_files(clip, tmp_path):
    with FrameSource(clip) as source:
        frames = [source.read() for _ in range(7)]  # 5 frames, then the file starts over
    assert all(f is not None and f.shape == (48, 64, 3) and f.dtype.name == "uint8" for f in frames)
    assert (frames[5].astype(int) - frames[0].astype(int)).__abs__().mean() < 1  # looped back to frame 0
    with FrameSource(clip, loop=False) as source:
        assert sum(source.read() is not None for _ in range(7)) == 5
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nope")
    with pytest.raises(VideoError, match="bad.mp4: cannot be opened"):
        FrameSource(bad)
    with pytest.raises(VideoError, match="no such file"):
        FrameSource(tmp_path / "missing.mp4")
    # No camera on a test machine: open_source falls back to the file
    assert open_source(camera=9, fallback=clip).name == str(clip)


def test_panel_runs_and_stops_in_the_background(clip):
    with FrameSource(clip) as source:
        panel = LivePanel(resolve_model("paintings"), source, size=32)
        assert panel.styles[:2] == ["starry_night", "wave"]
        panel.start()
        assert wait_for(lambda: panel.frames_shown >= 3), panel.status.value
        assert panel.running and panel.start_button.disabled and not panel.stop_button.disabled
        panel.stop()
        assert not panel.running and not panel.start_button.disabled and panel.stop_button.disabled
        shown = panel.frames_shown
        time.sleep(0.3)
        assert panel.frames_shown == shown  # nothing after stop
        assert panel.image.shape == (3, 24, 32)  # long side 32, the clip's 4:3 kept
        assert panel.view.value[:2] == b"\xff\xd8"  # a JPEG on screen
        assert panel.fps > 0 and "stopped after" in panel.status.value


def test_sliders_apply_to_the_next_frame(clip):
    with FrameSource(clip, loop=False) as source:
        panel = LivePanel(resolve_model("paintings"), source, size=32, start={"wave": 1.0})
        wave = panel.step()
        assert "wave 1.00" in panel.status.value and "frames/s" in panel.status.value
        panel.sliders["wave"].value = 0.0
        panel.sliders["the_scream"].value = 1.0
        panel.strength_slider.value = 0.0
        photo = panel.step()  # strength 0 is the frame itself: the same picture on both sides
        assert panel.view.value == panel.camera_view.value
        for s in panel.sliders.values():
            s.value = 0.0
        unstyled = panel.step()
        assert "no style" in panel.status.value
        assert (wave - photo).abs().mean() > 0.02 and unstyled.shape == photo.shape
        # the video has 5 frames and does not loop: 2 more, then the end
        assert panel.step() is not None and panel.step() is not None and panel.step() is None


def test_clips_for_the_notebook(tmp_path):
    photos = [torch.rand(3, 40, 60), torch.rand(3, 50, 50)]
    path = demo_video(tmp_path / "demo.mp4", photos, size=(24, 32), frames_per_photo=6, fps=12)
    info = probe(path)
    assert (info.width, info.height, info.frames) == (32, 24, 12)
    gif = gif_bytes(torch.rand(4, 3, 24, 32), fps=8)
    assert gif[:6] == b"GIF89a"
    with Image.open(io.BytesIO(gif)) as im:
        assert im.n_frames == 4 and im.size == (32, 24)
    with Image.open(io.BytesIO(gif_bytes(torch.rand(2, 3, 24, 32), max_side=16))) as im:
        assert im.n_frames == 2 and im.size == (16, 12)
    assert frames_per_second(resolve_model("paintings"), 32, frames=2) > 0


def test_morph_mixes_walk_through_the_styles():
    mixes = morph_mixes(["a", "b", "c"], 5)
    assert mixes[0] == {"a": 1.0} and mixes[2] == {"b": 1.0} and mixes[-1] == {"c": 1.0}
    assert mixes[1] == {"a": 0.5, "b": 0.5}
    assert all(abs(sum(m.values()) - 1) < 1e-9 for m in mixes)
    assert morph_mixes(["a"], 3) == [{"a": 1.0}] * 3


def test_show_moves_the_sliders_and_checks_names(clip):
    with FrameSource(clip) as source:
        panel = LivePanel(resolve_model("paintings"), source, size=32)
        panel.show({"the_scream": 1.0}, strength=0.5)
        assert panel.mix == {"the_scream": 1.0} and panel.strength_slider.value == 0.5
        with pytest.raises(ValueError, match="unknown style"):
            panel.show({"mona_lisa": 1.0})
