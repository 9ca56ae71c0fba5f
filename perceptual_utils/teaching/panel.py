"""Instructor panel for notebook 02: slide through layers, iterations and the style/content balance.

The panel only shows frames computed beforehand (:func:`.frames.reconstruction_frames`, cached on
disk), so moving a slider swaps one precomputed PNG: instant in a live class. The "compute" button
computes (or loads) frames for a new image, a path or an upload.
"""
from __future__ import annotations

import inspect
import io
from collections.abc import Callable

import torch
from PIL import Image, UnidentifiedImageError

from ..images import ImageLoadError, from_pil, load_image, to_pil
from .frames import FrameSet, _to_float


def _png_bytes(image: torch.Tensor, scale: int = 1) -> bytes:
    pil = to_pil(image)
    if scale > 1:  # nearest-neighbour upscaling keeps small images crisp on screen
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def _accepts(fn: Callable, name: str) -> bool:
    """Whether ``fn`` takes keyword ``name`` (or ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)


def _uploaded_bytes(value) -> bytes | None:
    """The bytes of the first file of an ipywidgets ``FileUpload`` value (v7 dict or v8 tuple)."""
    if not value:
        return None
    item = next(iter(value.values())) if isinstance(value, dict) else value[0]
    content = item["content"]
    return bytes(content)


class ReconstructionPanel:
    """Sliders for layer, iteration and style share over a :class:`FrameSet`, plus a
    "compute" button for a new image (a path or an upload).

    Every PNG is encoded when the frames are set, so a slider callback only assigns bytes to the
    image widget. The callbacks are plain methods (:meth:`show`, :meth:`on_compute`), so the
    panel can be driven without a browser (tests do so).

    Args:
        frame_set: the precomputed frames.
        compute: ``image -> FrameSet`` used by the button (e.g. a ``functools.partial`` of
            :func:`reconstruction_frames` with the notebook's settings).
        display_px: on-screen size of the long side (images are upscaled by an integer factor).
    """

    def __init__(self, frame_set: FrameSet, compute: Callable[[torch.Tensor], FrameSet] | None = None,
                 display_px: int = 256):
        import ipywidgets as W  # here, not at the top: importing ipywidgets is slow and only the panel needs it

        self._compute = compute
        self.display_px = display_px
        # description_width "initial": the label takes the width it needs (the default 80 px cut
        # "style share" short, issue 37); the button's width "auto" fits its text the same way.
        label = {"description_width": "initial"}
        self.layer_slider = W.SelectionSlider(options=["relu1_2"], description="layer", continuous_update=True,
                                              style=label)
        self.iteration_slider = W.SelectionSlider(options=[0], description="iteration", continuous_update=True,
                                                  style=label)
        self.share_slider = W.SelectionSlider(options=[("0", 0.0)], description="style share",
                                              continuous_update=True, style=label)
        self.view = W.Image(format="png")
        self.original_view = W.Image(format="png")
        self.path_text = W.Text(placeholder="path/to/your_image.jpg", description="image")
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload")
        self.button = W.Button(description="compute new image", button_style="primary", layout=W.Layout(width="auto"))
        self.status = W.Label(value="")
        self.set_frames(frame_set)
        for slider in (self.layer_slider, self.iteration_slider, self.share_slider):
            slider.observe(self._on_slider, names="value")
        self.button.on_click(self.on_compute)
        self.widget = W.VBox([
            W.HBox([W.VBox([W.Label("original"), self.original_view]),
                    W.VBox([W.Label("reconstruction"), self.view])]),
            self.layer_slider, self.iteration_slider, self.share_slider,
            W.HBox([self.path_text, self.upload, self.button]), self.status,
        ])

    # -- state ------------------------------------------------------------------------------
    def set_frames(self, frame_set: FrameSet) -> None:
        """Use new frames: encode every PNG now, reset the sliders' options, show the last frame."""
        self.frame_set = frame_set
        scale = max(1, self.display_px // max(frame_set.original.shape[-2:]))
        self._png = {
            (layer, share, k): _png_bytes(_to_float(stack[i]), scale)
            for (layer, share), stack in frame_set.frames.items()
            for i, k in enumerate(frame_set.iterations)
        }
        self._updating = True  # one redraw at the end, not one per option change
        try:
            self.layer_slider.options = frame_set.layers
            self.iteration_slider.options = frame_set.iterations
            self.share_slider.options = [(f"{s:.2f}", s) for s in frame_set.shares]
            self.layer_slider.value = frame_set.layers[0]
            self.iteration_slider.value = frame_set.iterations[-1]
            self.share_slider.value = frame_set.shares[0]
        finally:
            self._updating = False
        self.original_view.value = _png_bytes(frame_set.original, scale)
        self._redraw()

    @property
    def current(self) -> tuple[str, float, int]:
        """``(layer, style share, iteration)`` shown now."""
        return self.layer_slider.value, self.share_slider.value, self.iteration_slider.value

    def show(self, layer: str | None = None, iteration: int | None = None, share: float | None = None) -> bytes:
        """Move the sliders (as a user would) and return the PNG bytes now displayed."""
        if layer is not None:
            self.layer_slider.value = layer
        if iteration is not None:
            self.iteration_slider.value = iteration
        if share is not None:
            self.share_slider.value = share
        return self.view.value

    def _on_slider(self, change=None) -> None:
        if not self._updating:
            self._redraw()

    def _redraw(self) -> None:
        layer, share, k = self.current
        self.view.value = self._png[(layer, share, k)]
        self.status.value = f"{layer}, style share {share:.2f}, iteration {k}"

    # -- the button ---------------------------------------------------------------------------
    def _image_from_inputs(self) -> torch.Tensor:
        data = _uploaded_bytes(self.upload.value)
        if data is not None:
            try:
                with Image.open(io.BytesIO(data)) as img:
                    return from_pil(img)
            except (UnidentifiedImageError, OSError) as exc:
                raise ImageLoadError(f"the uploaded file is not an image ({exc})") from None
        path = self.path_text.value.strip()
        if not path:
            raise ValueError("give a path or upload an image first")
        return load_image(path)

    def on_compute(self, _button=None) -> bool:
        """Button callback: compute (or load cached) frames for the path/upload and show them.
        Errors are shown in the status line (never raised into the event loop); returns success."""
        if self._compute is None:
            self.status.value = "no compute function was given to this panel"
            return False
        try:
            image = self._image_from_inputs()
            self.status.value = "computing frames (this takes a while; the result is cached)..."
            self.button.disabled = True
            if _accepts(self._compute, "on_progress"):
                frame_set = self._compute(image, on_progress=self._report_progress)
            else:
                frame_set = self._compute(image)
            self.set_frames(frame_set)
            return True
        except (ValueError, OSError) as exc:
            self.status.value = f"error: {exc}"
            return False
        finally:
            self.button.disabled = False

    def _report_progress(self, done: int, total: int, what: str) -> None:
        """Progress of the button's computation in the status line (widget updates reach the browser
        while the cell runs, so the kernel never looks frozen)."""
        self.status.value = f"computing frames: run {done + 1 if done < total else total} of {total} ({what})"

    def _ipython_display_(self) -> None:
        from IPython.display import display  # only ever called inside IPython

        display(self.widget)
