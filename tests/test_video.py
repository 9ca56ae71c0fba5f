"""Video through the command line and :mod:`perceptual_utils.video`, on small clips made here:
frames, frame rate, audio (copied, not re-encoded), size, atomic writes, one-line errors."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from perceptual_utils.cli import main  # noqa: E402
from perceptual_utils.images import save_image  # noqa: E402
from perceptual_utils.video import (VideoError, probe, read_frames, transform_video,  # noqa: E402
                                    write_video)

FRAMES, W, H, FPS, RATE = 12, 48, 32, 12, 16000


def make_clip(path, frames=FRAMES, width=W, height=H, fps=FPS, audio=True):
    """An H.264 clip: a colour ramp over time and a bar that moves, with a 440 Hz mono AAC track."""
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    sound = None
    if audio:
        sound = out.add_stream("aac", rate=RATE)
        sound.layout = "mono"
    for i in range(frames):
        img = np.zeros((height, width, 3), np.uint8)
        img[..., 0] = 40 + 15 * i
        img[:, : 4 * i % width, 1] = 200
        out.mux(video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
    out.mux(video.encode(None))
    if sound is not None:
        t = np.arange(RATE * frames // fps) / RATE
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        for k in range(0, samples.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, k:k + 1024]), format="fltp",
                                               layout="mono")
            frame.sample_rate = RATE
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    out.close()
    return path


def audio_payload(path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def decoded(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


@pytest.fixture()
def clip(tmp_path):
    return make_clip(tmp_path / "clip.mp4")


def test_transform_keeps_frames_rate_size_and_audio(clip, tmp_path):
    calls = []

    def invert(batch):
        calls.append(batch.shape[0])
        return 1 - batch

    out = transform_video(clip, tmp_path / "out.mp4", invert, batch_size=5, progress=False)
    info = probe(out)
    assert (info.width, info.height, info.frames, info.fps, info.has_audio) == (W, H, FRAMES, Fraction(FPS), True)
    assert calls == [5, 5, 2]  # batched, the last batch smaller
    # The audio is remuxed: the very same packets, not a re-encoding.
    assert audio_payload(out) == audio_payload(clip)
    # Each frame was transformed (up to H.264's rounding), in order.
    before, after = decoded(clip).astype(int), decoded(out).astype(int)
    assert np.abs((255 - before) - after).mean() < 4
    assert np.abs(before[::-1] - before).mean() > 10  # the clip changes over time, so order was checked


def test_read_and_write_round_trip(tmp_path):
    frames = torch.rand(6, 3, 16, 24).mul(4).round().div(4)  # flat levels survive yuv420p closely
    path = write_video(iter(frames.split(4)), tmp_path / "made.mkv", fps=Fraction(30000, 1001))
    info = probe(path)
    assert (info.width, info.height, info.frames or 6, info.fps, info.has_audio) == \
        (24, 16, 6, Fraction(30000, 1001), False)
    back = torch.cat(list(read_frames(path, batch_size=4)))
    assert back.shape == (6, 3, 16, 24)
    assert [b.shape[0] for b in read_frames(path, batch_size=4, max_frames=5)] == [4, 1]


def test_odd_sides_lose_one_pixel(tmp_path):
    path = write_video([torch.rand(2, 3, 17, 21)], tmp_path / "odd.mp4", fps=10)
    info = probe(path)
    assert (info.width, info.height) == (20, 16)


def test_cli_stylizes_a_clip_with_a_mix(clip, tmp_path, capsys):
    out = tmp_path / "styled.mp4"
    code = main(["stylize", "--model", "paintings", "--mix", "starry_night=0.7,wave=0.3", "--strength", "0.8",
                 "--input", str(clip), "--output", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    info = probe(out)
    assert (info.width, info.height, info.frames, info.fps, info.has_audio) == (W, H, FRAMES, Fraction(FPS), True)
    assert np.abs(decoded(out).astype(int) - decoded(clip).astype(int)).mean() > 5  # it was stylised


def test_cli_folder_of_videos_and_images(clip, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    make_clip(folder / "a.mov", frames=3, audio=False)
    save_image(torch.rand(3, 20, 20), folder / "b.png")
    code = main(["stylize", "--model", "wave", "--input", str(folder), str(clip), "--output",
                 str(tmp_path / "out"), "--no-progress", "--batch", "2"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mov", "b.png", "clip.mp4"]
    assert probe(tmp_path / "out" / "a.mov").frames == 3 and not probe(tmp_path / "out" / "a.mov").has_audio


def test_upscale_on_video(clip, tmp_path, capsys):
    code = main(["upscale", "--model", "x4_pixel", "--input", str(clip), "--output", str(tmp_path / "big.mp4"),
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    info = probe(tmp_path / "big.mp4")
    assert (info.width, info.height, info.frames, info.has_audio) == (4 * W, 4 * H, FRAMES, True)


def test_failure_leaves_no_partial_file(clip, tmp_path):
    target = tmp_path / "out" / "x.mp4"
    seen = []

    def fails_late(batch):
        seen.append(batch.shape[0])
        if len(seen) == 2:  # after the first batch has been encoded and written
            raise RuntimeError("boom")
        return batch

    with pytest.raises(RuntimeError, match="boom"):
        transform_video(clip, target, fails_late, batch_size=4, progress=False)
    assert list(target.parent.iterdir()) == []  # neither the video nor its temporary file
    target.write_bytes(b"old")  # an existing output survives a failed run untouched
    with pytest.raises(RuntimeError):
        seen.clear()
        transform_video(clip, target, fails_late, batch_size=4, progress=False)
    assert target.read_bytes() == b"old" and len(list(target.parent.iterdir())) == 1


@pytest.mark.parametrize("content", [b"not a video at all", b""])
def test_bad_video_is_one_line_error(tmp_path, capsys, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    code = main(["stylize", "--model", "wave", "--input", str(bad), "--output", str(tmp_path / "o.mp4"),
                 "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.startswith("error: ") and "\n" not in err and "bad.mp4" in err and "Traceback" not in err
    assert not (tmp_path / "o.mp4").exists()
    with pytest.raises(VideoError, match="not a readable video"):
        probe(bad)


def test_truncated_video_is_one_line_error(clip, tmp_path, capsys):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])
    code = main(["stylize", "--model", "wave", "--input", str(cut), "--output", str(tmp_path / "o.mp4"),
                 "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("error: ") and "\n" not in err and "cut.mp4" in err
    assert not (tmp_path / "o.mp4").exists()


def test_video_to_an_image_name_or_unwritable_container_is_refused(clip, tmp_path, capsys):
    code = main(["stylize", "--model", "wave", "--input", str(clip), "--output", str(tmp_path / "o.png"),
                 "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("error: ") and "is a video" in err and "\n" not in err
    with pytest.raises(VideoError, match="cannot write .avi"):
        transform_video(clip, tmp_path / "o.avi", lambda b: b, progress=False)
    assert not list(tmp_path.glob("o.*"))
