"""Image loading for every common format and mode, clear errors, resize/crop, histogram matching."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from perceptual_utils.images import (
    ImageLoadError,
    center_crop,
    load_image,
    match_histograms,
    random_crop,
    resize,
    resize_long_side,
    resize_short_side,
    save_image,
)


def gradient_rgb(h: int = 12, w: int = 16) -> np.ndarray:
    """A smooth RGB uint8 test picture (distinct channels, no JPEG-hostile edges)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 128)], axis=2).astype(np.uint8)


def check_tensor(t: torch.Tensor, h: int = 12, w: int = 16) -> None:
    assert t.shape == (3, h, w) and t.dtype == torch.float32
    assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0


@pytest.mark.parametrize("fmt,ext,tol", [("JPEG", "jpg", 0.08), ("PNG", "png", 0), ("BMP", "bmp", 0),
                                         ("WEBP", "webp", 0.08), ("TIFF", "tif", 0)])
def test_formats_load_as_rgb_in_unit_range(tmp_path, fmt, ext, tol):
    arr = gradient_rgb()
    path = tmp_path / f"img.{ext}"
    Image.fromarray(arr).save(path, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    t = load_image(path)
    check_tensor(t)
    expected = torch.from_numpy(arr).permute(2, 0, 1).float() / 255
    assert (t - expected).abs().mean() <= max(tol, 1e-7)


def test_mode_L_is_grey_replicated(tmp_path):
    p = tmp_path / "l.png"
    Image.fromarray(np.full((12, 16), 51, np.uint8), mode="L").save(p)
    t = load_image(p)
    check_tensor(t)
    torch.testing.assert_close(t, torch.full((3, 12, 16), 0.2))


def test_mode_LA_and_RGBA_composite_onto_white(tmp_path):
    la = np.zeros((12, 16, 2), np.uint8)  # black, fully transparent
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    torch.testing.assert_close(load_image(tmp_path / "la.png"), torch.ones(3, 12, 16))
    rgba = np.dstack([gradient_rgb(), np.full((12, 16), 255, np.uint8)])  # opaque: colours unchanged
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    torch.testing.assert_close(load_image(tmp_path / "rgba.png"),
                               torch.from_numpy(gradient_rgb()).permute(2, 0, 1).float() / 255)
    half = rgba.copy()
    half[..., :3], half[..., 3] = 0, 128  # black at ~50% alpha over white -> ~0.5 grey
    Image.fromarray(half, mode="RGBA").save(tmp_path / "half.png")
    assert load_image(tmp_path / "half.png").mean().item() == pytest.approx(127 / 255, abs=0.01)


def test_mode_P_with_and_without_transparency(tmp_path):
    img = Image.fromarray(gradient_rgb()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    img.save(tmp_path / "p.png")
    check_tensor(load_image(tmp_path / "p.png"))
    pal = Image.new("P", (16, 12), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    pal.paste(1, (0, 0, 8, 12))  # left half red, right half index 0 (black, made transparent)
    pal.save(tmp_path / "pt.png", transparency=0)
    t = load_image(tmp_path / "pt.png")
    torch.testing.assert_close(t[:, :, 8:], torch.ones(3, 12, 8))  # transparent -> white
    torch.testing.assert_close(t[:, :, :8], torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1).expand(3, 12, 8))


def test_mode_CMYK_jpeg(tmp_path):
    p = tmp_path / "cmyk.jpg"
    Image.fromarray(gradient_rgb()).convert("CMYK").save(p, quality=95)
    assert Image.open(p).mode == "CMYK"
    t = load_image(p)
    check_tensor(t)
    expected = torch.from_numpy(gradient_rgb()).permute(2, 0, 1).float() / 255
    assert (t - expected).abs().mean() < 0.08


def test_16_bit_png_keeps_precision(tmp_path):
    arr = (np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 300 + 7).astype(np.uint16)
    p = tmp_path / "i16.png"
    Image.fromarray(arr).save(p)
    assert Image.open(p).mode.startswith("I")
    t = load_image(p)
    check_tensor(t)
    torch.testing.assert_close(t[0], torch.from_numpy(arr.astype(np.float32) / 65535), rtol=0, atol=1e-6)
    # two neighbours 300/65535 apart stay distinct (8-bit would merge many of them)
    assert len(torch.unique(t[0])) == 12 * 16


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :10] = 255  # left half white in the stored pixels
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    p = tmp_path / "rotated.jpg"
    img.save(p, exif=exif, quality=95)
    t = load_image(p)
    assert t.shape == (3, 20, 10)  # displayed upright: portrait
    assert t[:, :10].mean() > 0.9 and t[:, 10:].mean() < 0.1  # the white half is now on top


def test_missing_directory_nonimage_and_truncated_files_raise_naming_the_file(tmp_path):
    with pytest.raises(ImageLoadError, match="missing.png: no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageLoadError, match="is a directory"):
        load_image(tmp_path)
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture")
    with pytest.raises(ImageLoadError, match="notes.jpg: not an image"):
        load_image(text)
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)  # incompressible
    for ext in ("png", "jpg"):
        good = tmp_path / f"good.{ext}"
        Image.fromarray(noise).save(good)
        data = good.read_bytes()
        truncated = tmp_path / f"truncated.{ext}"
        truncated.write_bytes(data[: len(data) // 2])
        with pytest.raises(ImageLoadError, match=f"truncated.{ext}: unreadable"):
            load_image(truncated)


def test_save_and_reload_round_trip(tmp_path):
    t = torch.from_numpy(gradient_rgb()).permute(2, 0, 1).float() / 255
    p = save_image(t, tmp_path / "sub" / "out.png")
    torch.testing.assert_close(load_image(p), t)


def test_resize_and_crop():
    t = torch.rand(3, 30, 60)
    assert resize_short_side(t, 15).shape == (3, 15, 30)
    assert resize_long_side(t, 30).shape == (3, 15, 30)
    assert resize(t, (10, 12)).shape == (3, 10, 12)
    assert resize(t.unsqueeze(0), 8).shape == (1, 3, 8, 8)
    torch.testing.assert_close(center_crop(t, (10, 20)), t[:, 10:20, 20:40])
    a = random_crop(t, 16, generator=torch.Generator().manual_seed(1))
    b = random_crop(t, 16, generator=torch.Generator().manual_seed(1))
    assert a.shape == (3, 16, 16)
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="larger than"):
        center_crop(t, 31)
    with pytest.raises(ValueError, match="larger than"):
        random_crop(t, (10, 61))
    # load_image's size argument resizes the short side (or the long one)
    assert resize_short_side(t, 30).shape == t.shape


def test_load_image_resize_arguments(tmp_path):
    p = tmp_path / "g.png"
    Image.fromarray(gradient_rgb(12, 16)).save(p)
    assert load_image(p, size=6).shape == (3, 6, 8)
    assert load_image(p, size=8, long_side=True).shape == (3, 6, 8)


def test_match_histograms_gives_reference_distribution():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, 20, 20, generator=g) * 0.3  # dark
    reference = 0.6 + 0.4 * torch.rand(3, 10, 30, generator=g)  # bright, other size
    out = match_histograms(image, reference)
    assert out.shape == image.shape
    for c in range(3):
        assert out[c].mean().item() == pytest.approx(reference[c].mean().item(), abs=0.02)
        # ranks preserved: a monotone remapping of each channel
        order = image[c].flatten().argsort()
        assert (out[c].flatten()[order].diff() >= -1e-6).all()


def test_written_files_get_ordinary_permissions(tmp_path):
    """Atomic writes go through mkstemp (owner-only); the result must be readable like open()'s."""
    import os
    import stat

    umask = os.umask(0o022)
    try:
        path = save_image(torch.rand(3, 8, 8), tmp_path / "out.png")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
