"""The instructor's live panel (notebook 07): a camera, or a video file, stylised frame by frame by the
multi-style network, with a slider per painting's share, a strength slider, start/stop buttons and
the frames per second shown.

Frames come from OpenCV's ``VideoCapture`` (:class:`FrameSource`): a camera by index, or a video
file, looped, where there is no camera (CI, a server, this workbook's machines). Each frame is
scaled (OpenCV's area filter, the cheap and alias-free way down) so its long side is the panel's
``size``, stylised with the sliders' mix and strength (:func:`perceptual_utils.style.stylize.stylize_frames`,
the package's inference path), and shown as a JPEG (encoding a PNG costs more than a small frame's
forward pass). The loop runs in a background thread, so the notebook stays responsive and slider
moves apply from the next frame on.

The frame rate is set by the network's cost, which grows with the pixels: ``benchmarks/live_fps.py``
measures which size keeps it live (see notebook 07). The callbacks are plain methods (:meth:`LivePanel.step`,
:meth:`LivePanel.start`, :meth:`LivePanel.stop`), so the panel runs without a browser (tests do so).
"""
from __future__ import annotations

import io
import os
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..flicker import camera_path, film, fit_photo
from ..images import to_pil
from ..style.stylize import prepare_model, style_names
from ..style.stylize import stylize_frames
from ..video import VideoError, write_video
from .mixer import move_sliders


class FrameSource:
    """Frames from a camera (``source`` an int, OpenCV's camera index) or a video file (a path), as
    ``(H, W, 3)`` RGB uint8 arrays. A file starts over at its end when ``loop`` (a classroom demo runs
    as long as the instructor wants); a camera never ends.

    Raises:
        VideoError: the camera or file cannot be opened (one line).
    """

    def __init__(self, source: int | str | os.PathLike, loop: bool = True):
        import cv2  # here: only the live panel needs OpenCV

        self._cv2 = cv2
        self.is_camera = isinstance(source, int)
        self.name = f"camera {source}" if self.is_camera else str(source)
        if not self.is_camera and not Path(source).is_file():
            raise VideoError(f"{source}: no such file")
        self.capture = cv2.VideoCapture(source if self.is_camera else str(source))
        if not self.capture.isOpened():
            raise VideoError(f"{self.name}: cannot be opened" + ("" if self.is_camera else " as a video"))
        if self.is_camera:  # keep one frame queued, not several: the panel shows now, not a second ago
            self.capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.loop = loop and not self.is_camera
        self.fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)

    def read(self) -> np.ndarray | None:
        """The next frame, or ``None`` at the end of a file that does not loop (or a camera that stopped)."""
        ok, bgr = self.capture.read()
        if not ok and self.loop:
            self.capture.set(self._cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self.capture.read()
        return np.ascontiguousarray(bgr[..., ::-1]) if ok else None

    def close(self) -> None:
        self.capture.release()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_source(camera: int | None = 0, fallback: str | os.PathLike | None = None) -> FrameSource:
    """The camera ``camera`` if it opens, else the video file ``fallback`` (looped)."""
    if camera is not None:
        import cv2

        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # no camera is expected, not a warning
        try:
            return FrameSource(camera)
        except VideoError:
            if fallback is None:
                raise
        finally:
            cv2.utils.logging.setLogLevel(level)
    if fallback is None:
        raise ValueError("give a camera index or a video file")
    return FrameSource(fallback)


def _scaled(frame: np.ndarray, size: int) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    scale = size / max(h, w)
    if scale == 1:
        return frame
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(frame, new, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _jpeg(image: torch.Tensor | np.ndarray, quality: int = 85) -> bytes:
    from PIL import Image

    pil = to_pil(image) if isinstance(image, torch.Tensor) else Image.fromarray(image)
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


class LivePanel:
    """Start/stop buttons, a slider per style and a strength slider over a live source.

    Args:
        model: a (multi-style) style network, a model file, or a shipped model's path.
        source: a :class:`FrameSource` (or anything with ``read()`` returning RGB uint8 arrays or ``None``).
        size: long side (px) each frame is scaled to before stylising; 96 (96x72 for a 4:3 camera) was
            the largest that stayed at 15 frames/s or more on this project's shared 2-core AVX2 CPU
            (``benchmarks/results/live_fps.json``: 17 frames/s on one thread).
        start: ``{style: share}`` shown first (default: the first style alone).
        display_px: on-screen width of each picture; the browser scales the small frames up.
    """

    def __init__(self, model: nn.Module | str | os.PathLike, source, size: int = 96,
                 start: Mapping[str, float] | None = None, display_px: int = 320):
        import ipywidgets as W  # the panel's only use of ipywidgets

        self.net = prepare_model(model)
        self.source = source
        self.size = int(size)
        self.styles = style_names(self.net) or [str(i) for i in range(int(getattr(self.net, "num_styles", 1)))]
        start = dict(start) if start else {self.styles[0]: 1.0}
        self.sliders = {name: W.FloatSlider(value=float(start.get(name, 0.0)), min=0.0, max=1.0, step=0.05,
                                            description=name, readout_format=".2f") for name in self.styles}
        self.strength_slider = W.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.05, description="strength",
                                             readout_format=".2f")
        self.start_button = W.Button(description="start", button_style="success", icon="play")
        self.stop_button = W.Button(description="stop", button_style="danger", icon="stop", disabled=True)
        self.view = W.Image(format="jpeg")
        self.camera_view = W.Image(format="jpeg")
        for view in (self.view, self.camera_view):
            view.layout.width = f"{int(display_px)}px"
        self.status = W.Label(value=f"stopped; source: {getattr(source, 'name', 'frames')}")
        self.start_button.on_click(lambda _b: self.start())
        self.stop_button.on_click(lambda _b: self.stop())
        self.widget = W.VBox([
            W.HBox([W.VBox([W.Label("camera"), self.camera_view]), W.VBox([W.Label("network output"), self.view])]),
            W.HBox([self.start_button, self.stop_button]), *self.sliders.values(), self.strength_slider, self.status,
        ])
        self.frames_shown = 0
        self.image: torch.Tensor | None = None
        self._times: deque[float] = deque(maxlen=10)  # the last frames' wall times: a steady, current rate
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one frame at a time, whether from the loop or a direct step()

    # -- state ----------------------------------------------------------------------------------
    @property
    def mix(self) -> dict[str, float]:
        """The sliders' shares above 0 (not normalised; :func:`stylize_frames` normalises)."""
        return {name: float(s.value) for name, s in self.sliders.items() if s.value > 0}

    @property
    def fps(self) -> float:
        """Frames per second over the last frames shown (0 before two frames)."""
        return len(self._times) / sum(self._times) if self._times else 0.0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def step(self) -> torch.Tensor | None:
        """Read, stylise and show one frame; ``None`` when the source has ended."""
        with self._lock:
            t0 = time.perf_counter()
            frame = self.source.read()
            if frame is None:
                return None
            frame = _scaled(frame, self.size)
            x = torch.from_numpy(frame).permute(2, 0, 1).float().div_(255)
            mix = self.mix
            if mix:  # a single-style network takes no mix: its one slider only switches it on or off
                self.image = stylize_frames(self.net, x, mix=mix if len(self.styles) > 1 else None,
                                            strength=float(self.strength_slider.value))
            else:  # every share at 0 is no mix: show the camera as it is
                self.image = x
            self.view.value = _jpeg(self.image)
            self.camera_view.value = _jpeg(frame)
            self.frames_shown += 1
            self._times.append(time.perf_counter() - t0)
            h, w = frame.shape[:2]
            what = " + ".join(f"{k} {v / sum(mix.values()):.2f}" for k, v in mix.items()) or "no style (all shares 0)"
            self.status.value = (f"{self.fps:.1f} frames/s at {w}x{h} px; {what}, strength "
                                 f"{float(self.strength_slider.value):.2f}; frame {self.frames_shown}")
            return self.image

    def show(self, shares: Mapping[str, float] | None = None, strength: float | None = None) -> torch.Tensor | None:
        """Move the sliders (as a user would: unnamed styles go to 0), then :meth:`step` one frame."""
        move_sliders(self, shares, strength)
        return self.step()

    # -- the buttons -----------------------------------------------------------------------------
    def start(self) -> None:
        """Run :meth:`step` in a background thread until :meth:`stop` (or the source ends)."""
        if self.running:
            return
        self._stop.clear()
        self._times.clear()
        self._thread = threading.Thread(target=self._loop, name="live-panel", daemon=True)
        self.start_button.disabled, self.stop_button.disabled = True, False
        self._thread.start()

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                if self.step() is None:
                    self.status.value += " (end of the video)"
                    break
        except Exception as exc:  # shown in the panel: a thread's exception would otherwise vanish
            self.status.value = f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        finally:
            self.start_button.disabled, self.stop_button.disabled = False, True

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the frame in progress and wait for it (at most ``timeout`` s)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.start_button.disabled, self.stop_button.disabled = False, True
        if not self.status.value.startswith("error"):
            self.status.value = f"stopped after {self.frames_shown} frames ({self.fps:.1f} frames/s)"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


# ------------------------------------------------------------------------- the notebook's clips

def demo_video(path: str | os.PathLike, photos: Sequence[torch.Tensor], size: tuple[int, int] = (144, 192),
               frames_per_photo: int = 24, fps: float = 24) -> Path:
    """A video to stand in for a camera: a slow pan over each photo (:mod:`perceptual_utils.flicker`'s
    camera), ``size`` ``(h, w)``, written with :func:`perceptual_utils.video.write_video`."""
    path_ = camera_path("pan_subpixel", frames_per_photo)
    return write_video((film(fit_photo(p, size), path_, size) for p in photos), path, fps=fps)


def morph_mixes(styles: Sequence[str], frames: int) -> list[dict[str, float]]:
    """One mix per frame, moving from each style to the next at an even pace (the first style alone at
    the first frame, the last alone at the last): the sliders, automated, for an animation."""
    if len(styles) < 2 or frames < 2:
        return [{styles[0]: 1.0}] * frames
    out = []
    for t in range(frames):
        position = t / (frames - 1) * (len(styles) - 1)
        i = min(int(position), len(styles) - 2)
        share = position - i
        if share <= 0 or share >= 1:  # a style alone: a plain one-style pass
            out.append({styles[i] if share <= 0 else styles[i + 1]: 1.0})
        else:
            out.append({styles[i]: 1.0 - share, styles[i + 1]: share})
    return out


def gif_bytes(frames: torch.Tensor | Sequence[torch.Tensor], fps: float = 12, colours: int = 128,
              max_side: int | None = None) -> bytes:
    """An animated GIF (looping) of ``(T, 3, H, W)`` frames in [0, 1], for a notebook to show inline.
    ``colours`` per frame (GIF holds at most 256) trades size for banding; ``max_side`` scales larger
    frames down (a GIF barely compresses: measured here, 32 stylised frames of 160x120 px at 96
    colours take about 410 KB)."""
    images = [to_pil(f) for f in frames]
    if max_side and max(images[0].size) > max_side:
        scale = max_side / max(images[0].size)
        images = [im.resize((round(im.width * scale), round(im.height * scale)), resample=3) for im in images]
    images = [im.quantize(colors=colours, method=2) for im in images]  # 2: fast octree, fine for paintings
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps),
                   loop=0, optimize=True)
    return buf.getvalue()


def frames_per_second(model: nn.Module | str | os.PathLike, size: int, frames: int = 20, aspect: float = 0.75,
                      mix: Mapping[str, float] | None = None) -> float:
    """The live loop's rate at long side ``size`` on this machine (as many threads as torch uses): the
    stylisation and the JPEG encodings of :meth:`LivePanel.step`, on random frames, after one warm-up."""
    net = prepare_model(model)
    if mix is None and len(style_names(net)) > 1:
        mix = {style_names(net)[0]: 1.0}
    h = max(16, round(size * aspect))
    x = torch.rand(3, h, size)

    def one() -> None:
        out = stylize_frames(net, x, mix=mix)
        _jpeg(out), _jpeg(x)

    one()
    t0 = time.perf_counter()
    for _ in range(frames):
        one()
    return frames / (time.perf_counter() - t0)
