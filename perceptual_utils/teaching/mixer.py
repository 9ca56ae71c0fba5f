"""The instructor's style mixer: one multi-style network, a photo, a slider per painting and one
for the strength (notebook 06).

Each slider move runs one forward pass of the network at the panel's size (256 px by default;
a few tenths of a second on one laptop CPU core; the status line shows it), with the styles' conditional
norm parameters mixed in the sliders' proportions (Dumoulin et al. 2017) and the result faded
toward the photo by the strength (:func:`~perceptual_utils.style.stylize.stylize`). Nothing is
precomputed, so any photo works: pick one of the notebook's or upload your own.

The callbacks are plain methods (:meth:`StyleMixerPanel.show`), so the panel can be driven
without a browser (tests and the notebook's static figure do so).
"""
from __future__ import annotations

import io
import os
import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..images import ImageLoadError, from_pil, resize_long_side, to_pil
from ..style.stylize import prepare_model, style_names, stylize


def _png(image: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG")
    return buf.getvalue()


def _uploaded(value) -> tuple[str, bytes] | None:
    """``(name, bytes)`` of the first file of an ipywidgets ``FileUpload`` value (v7 dict or v8 tuple)."""
    if not value:
        return None
    if isinstance(value, dict):
        name, item = next(iter(value.items()))
    else:
        item = value[0]
        name = item.get("name", "upload")
    return str(name), bytes(item["content"])


def move_sliders(panel: Any, shares: Mapping[str, float] | None, strength: float | None) -> None:
    """Move a panel's sliders as a user would: each style to its share in ``shares`` (styles not named
    go to 0) and the strength slider to ``strength``; ``None`` leaves them. One function for this panel
    and the live one (:class:`~perceptual_utils.teaching.live.LivePanel`), so both reject an
    unknown style name alike. ``panel`` has ``sliders`` (``{style: slider}``), ``styles`` and
    ``strength_slider``."""
    if shares is not None:
        unknown = set(shares) - set(panel.sliders)
        if unknown:
            raise ValueError(f"unknown style(s) {', '.join(sorted(unknown))}; known: {', '.join(panel.styles)}")
        for name, slider in panel.sliders.items():
            slider.value = float(shares.get(name, 0.0))
    if strength is not None:
        panel.strength_slider.value = float(strength)


class StyleMixerPanel:
    """Sliders for each style's share and the strength over a multi-style network.

    Args:
        model: a multi-style :class:`~perceptual_utils.style.net.StyleTransferNet`, a model file
            or a shipped model's path (single-style networks work too: one slider).
        photos: ``{name: image}``, the photos to choose from (RGB tensors in [0, 1]).
        size: long side (px) the photo is resized to before stylising.
        start: ``{style: share}`` shown first (default: the first style alone).
    """

    def __init__(self, model: nn.Module | str | os.PathLike, photos: Mapping[str, torch.Tensor], size: int = 256,
                 start: Mapping[str, float] | None = None):
        import ipywidgets as W  # the panel's only use of ipywidgets; the rest of the package runs without it

        if not photos:
            raise ValueError("give at least one photo")
        self.net = prepare_model(model)
        self.size = int(size)
        self.styles = style_names(self.net) or [str(i) for i in range(int(getattr(self.net, "num_styles", 1)))]
        self.photos = {name: resize_long_side(image, self.size) for name, image in photos.items()}
        start = dict(start) if start else {self.styles[0]: 1.0}
        # One label width for every slider, wide enough for the longest name: the default 80 px cut
        # "composition_vii" short (issue 37), and "initial" alone would misalign the sliders.
        label = {"description_width": f"{8 * max(len(n) for n in [*self.styles, 'strength']) + 8}px"}
        self.sliders = {name: W.FloatSlider(value=float(start.get(name, 0.0)), min=0.0, max=1.0, step=0.05,
                                            description=name, continuous_update=False, readout_format=".2f",
                                            style=label)
                        for name in self.styles}
        self.strength_slider = W.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.05, description="strength",
                                             continuous_update=False, readout_format=".2f", style=label)
        self.photo_menu = W.Dropdown(options=list(self.photos), description="photo")
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload")
        self.view = W.Image(format="png")
        self.original_view = W.Image(format="png")
        self.status = W.Label(value="")
        self.last_seconds: float | None = None
        self.image: torch.Tensor | None = None
        for widget in (*self.sliders.values(), self.strength_slider, self.photo_menu):
            widget.observe(self._on_change, names="value")
        self.upload.observe(self._on_upload, names="value")
        self.widget = W.VBox([
            W.HBox([W.VBox([W.Label("photo"), self.original_view]), W.VBox([W.Label("network output"), self.view])]),
            W.HBox([self.photo_menu, self.upload]), *self.sliders.values(), self.strength_slider, self.status,
        ])
        self._updating = False
        self.render()

    # -- state ----------------------------------------------------------------------------------
    @property
    def shares(self) -> dict[str, float]:
        """The sliders' style shares (not normalised)."""
        return {name: float(s.value) for name, s in self.sliders.items()}

    @property
    def strength(self) -> float:
        return float(self.strength_slider.value)

    def render(self) -> torch.Tensor | None:
        """Stylise the chosen photo with the sliders' mix and strength; show it and the time taken.
        All shares at 0 is not a mix: the status says so and the last image stays."""
        photo = self.photos[self.photo_menu.value]
        shares = self.shares
        if sum(shares.values()) <= 0:
            self.status.value = "move at least one style slider above 0"
            return self.image
        t0 = time.perf_counter()
        mix = {name: share for name, share in shares.items() if share > 0}
        self.image = stylize(self.net, photo, mix=mix, strength=self.strength, tile=0)
        self.last_seconds = time.perf_counter() - t0
        self.view.value = _png(self.image)
        self.original_view.value = _png(photo)
        total = sum(mix.values())
        recipe = " + ".join(f"{name} {share / total:.2f}" for name, share in mix.items())
        h, w = photo.shape[-2:]
        self.status.value = f"{recipe}, strength {self.strength:.2f}: {self.last_seconds:.2f} s at {w}x{h} px"
        return self.image

    def show(self, shares: Mapping[str, float] | None = None, strength: float | None = None,
             photo: str | None = None) -> torch.Tensor | None:
        """Move the sliders (as a user would: unnamed styles go to 0) and return the image shown."""
        self._updating = True  # one render for the whole move, not one per slider
        try:
            move_sliders(self, shares, strength)
            if photo is not None:
                self.photo_menu.value = photo
        finally:
            self._updating = False
        return self.render()

    def add_photo(self, name: str, image: torch.Tensor) -> None:
        """Add a photo to the menu and show it."""
        self.photos[name] = resize_long_side(image, self.size)
        self._updating = True
        try:
            self.photo_menu.options = list(self.photos)
            self.photo_menu.value = name
        finally:
            self._updating = False
        self.render()

    # -- callbacks -------------------------------------------------------------------------------
    def _on_change(self, _change=None) -> None:
        if not self._updating:
            self.render()

    def _on_upload(self, _change=None) -> bool:
        """Upload callback: decode the file and add it; errors go to the status line, not the event loop."""
        from PIL import Image, UnidentifiedImageError

        found = _uploaded(self.upload.value)
        if found is None:
            return False
        name, data = found
        try:
            with Image.open(io.BytesIO(data)) as img:
                image = from_pil(img)
        except (UnidentifiedImageError, OSError, ImageLoadError) as exc:
            self.status.value = f"error: {name} is not an image ({exc})"
            return False
        self.add_photo(f"upload: {name}", image)
        return True

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
