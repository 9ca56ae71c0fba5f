"""The notebook-06 style mixer panel, driven without a browser: sliders mix the styles' norm
parameters, strength fades toward the photo, uploads add photos, bad input goes to the status line."""
from __future__ import annotations

import datetime
import io

import pytest
import torch

pytest.importorskip("ipywidgets")

from perceptual_utils.blocks import ConditionalInstanceNorm2d  # noqa: E402
from perceptual_utils.images import to_pil  # noqa: E402
from perceptual_utils.teaching.mixer import StyleMixerPanel  # noqa: E402
from perceptual_utils.style.net import StyleTransferNet  # noqa: E402
from perceptual_utils.style.stylize import stylize  # noqa: E402


def _net() -> StyleTransferNet:
    torch.manual_seed(0)
    net = StyleTransferNet(variant="modern", channels=4, num_residual=1, num_styles=3)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, ConditionalInstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    net.training_info = {"styles": ["starry", "wave", "scream"]}
    return net.eval()


def _photos() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"a": torch.rand(3, 40, 48, generator=g), "b": torch.rand(3, 32, 32, generator=g)}


def _png_upload(image: torch.Tensor, name: str = "mine.png") -> tuple[dict, ...]:
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG")
    data = buf.getvalue()
    return (_file(name, data, "image/png"),)


def _file(name: str, data: bytes, kind: str) -> dict:
    """One entry of an ipywidgets 8 FileUpload value."""
    return {"name": name, "type": kind, "size": len(data), "content": memoryview(data),
            "last_modified": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)}


def test_panel_starts_on_the_first_style_and_shows_a_png():
    panel = StyleMixerPanel(_net(), _photos(), size=32)
    assert panel.shares == {"starry": 1.0, "wave": 0.0, "scream": 0.0}
    assert panel.view.value[:4] == b"\x89PNG" and panel.image.shape == (3, 27, 32)  # long side 32
    assert "starry 1.00" in panel.status.value and " s at 32x27 px" in panel.status.value


def test_sliders_mix_the_styles_as_stylize_does():
    net, photos = _net(), _photos()
    panel = StyleMixerPanel(net, photos, size=32)
    got = panel.show({"starry": 0.3, "wave": 0.6}, photo="b")
    want = stylize(net, photos["b"], mix={"starry": 1, "wave": 2})  # 0.3 : 0.6 is 1 : 2
    assert torch.allclose(got, want, atol=1e-5)
    assert panel.shares == {"starry": 0.3, "wave": 0.6, "scream": 0.0}
    one = panel.show({"wave": 1.0})
    assert torch.allclose(one, stylize(net, photos["b"], style="wave"), atol=1e-6)
    assert not torch.allclose(one, got, atol=1e-3)


def test_strength_zero_shows_the_photo_and_slider_callbacks_rerender():
    panel = StyleMixerPanel(_net(), _photos(), size=32)
    before = panel.view.value
    panel.strength_slider.value = 0.0  # as a user drags it: the observer re-renders
    assert panel.view.value != before
    assert torch.allclose(panel.image, panel.photos[panel.photo_menu.value], atol=1e-6)


def test_all_shares_zero_is_refused_in_the_status_line():
    panel = StyleMixerPanel(_net(), _photos(), size=32)
    shown = panel.image
    assert panel.show({}) is shown and "at least one style" in panel.status.value
    with pytest.raises(ValueError, match="unknown style"):
        panel.show({"monet": 1.0})


def test_upload_adds_a_photo_and_a_bad_upload_says_so():
    panel = StyleMixerPanel(_net(), _photos(), size=32)
    panel.upload.value = _png_upload(torch.rand(3, 20, 24))
    assert panel.photo_menu.value == "upload: mine.png" and panel.image.shape == (3, 27, 32)
    panel.upload.value = (_file("notes.txt", b"not an image", "text/plain"),)
    assert panel.status.value.startswith("error: notes.txt is not an image")
    assert panel.photo_menu.value == "upload: mine.png"


def test_panel_needs_a_photo():
    with pytest.raises(ValueError, match="at least one photo"):
        StyleMixerPanel(_net(), {}, size=32)


def test_slider_labels_are_wide_enough_for_the_longest_style_name():
    panel = StyleMixerPanel(_net(), _photos(), size=32)
    longest = max([*panel.styles, "strength"], key=len)
    widths = {s.style.description_width for s in [*panel.sliders.values(), panel.strength_slider]}
    assert len(widths) == 1  # aligned
    assert int(widths.pop().removesuffix("px")) >= 7 * len(longest)  # about 7 px a character at the default font
