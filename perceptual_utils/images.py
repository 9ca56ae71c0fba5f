"""Image files and tensors: load, save, resize, crop, blur, show, histogram matching.

Tensors are float RGB in [0, 1], shaped ``(3, H, W)`` (single images) or ``(B, 3, H, W)``.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .model_io import atomic_write

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")


class ImageLoadError(ValueError):
    """A file is missing, unreadable, or not an image. The message names the file."""


def _pil_to_rgb_array(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> float32 RGB array in [0, 1], preserving 16-bit precision."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / peak, 0, 1)
        return np.repeat(arr[..., None], 3, axis=2).astype(np.float32)
    if img.mode == "F":
        arr = np.clip(np.asarray(img, dtype=np.float32), 0, 1)
        return np.repeat(arr[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Composite transparent pixels onto white rather than dropping alpha (black halos).
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    arr = np.array(img.convert("RGB"), dtype=np.float32)
    arr /= 255.0  # in place: one float copy of the image, not two
    return arr


def load_image(path: str | os.PathLike, size: int | None = None, long_side: bool = False) -> torch.Tensor:
    """Load an image file as a float RGB tensor ``(3, H, W)`` in [0, 1].

    Handles JPEG, PNG, BMP, WebP, TIFF, ... in modes L, LA, P, RGB, RGBA, CMYK, I;16 (16-bit),
    applies the EXIF orientation, and composites transparency onto white. Optionally resizes so
    the short side (or the long side, with ``long_side=True``) equals ``size``.

    Raises:
        ImageLoadError: missing, unreadable or non-image file (the message names the file).
    """
    p = Path(path)
    if not p.exists():
        raise ImageLoadError(f"{p}: no such file")
    if p.is_dir():
        raise ImageLoadError(f"{p}: is a directory, not an image file")
    if not p.is_file():  # opening a named pipe would wait for a writer forever; a device never ends
        raise ImageLoadError(f"{p}: is not a regular file (a named pipe, device or socket); give an image file")
    try:
        with Image.open(p) as img:
            img = ImageOps.exif_transpose(img)
            arr = _pil_to_rgb_array(img)
    except UnidentifiedImageError:
        raise ImageLoadError(f"{p}: not an image file (or a format Pillow cannot read)") from None
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)) / 1e6:.0f} MP, " if found else ""
        raise ImageLoadError(f"{p}: image too large to load safely ({size}limit "
                             f"{2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} MP): a possible decompression bomb") from None
    except MemoryError:
        raise ImageLoadError(f"{p}: image too large for the available memory") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageLoadError(f"{p}: unreadable image ({exc})") from None
    tensor = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).contiguous()
    if size is not None:
        tensor = resize_long_side(tensor, size) if long_side else resize_short_side(tensor, size)
    return tensor


def to_pil(image: torch.Tensor) -> Image.Image:
    """``(3, H, W)`` or ``(1, 3, H, W)`` float tensor in [0, 1] -> 8-bit RGB PIL image (rounded)."""
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"to_pil takes one image, got a batch of {image.shape[0]}")
        image = image[0]
    # One float copy (in-place scaling), then uint8: about 15 bytes per pixel at the peak.
    arr = image.detach().cpu().float().clamp(0, 1).mul_(255.0).add_(0.5).permute(1, 2, 0).numpy().astype(np.uint8)
    return Image.fromarray(arr, mode="RGB")


def image_format(path: str | os.PathLike) -> str:
    """The Pillow format an image file name's extension is written in (``"PNG"``, ``"JPEG"``, ...).

    Raises:
        ValueError: an extension Pillow cannot write (names the known ones).
    """
    p = Path(path)
    ext = p.suffix.lower()
    fmt = Image.registered_extensions().get(ext) if ext else None
    if fmt is None or fmt not in Image.SAVE:
        raise ValueError(f"{p}: unknown image file extension {ext or '(none)'!r}; use one of "
                         f"{', '.join(IMAGE_EXTENSIONS)}")
    return fmt


def from_pil(img: Image.Image) -> torch.Tensor:
    """PIL image (any mode) -> ``(3, H, W)`` float tensor in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(_pil_to_rgb_array(img))).permute(2, 0, 1).contiguous()


def save_image(image: torch.Tensor, path: str | os.PathLike, quality: int = 95) -> Path:
    """Save a ``(3, H, W)`` tensor in [0, 1] to ``path`` (format from the extension); creates folders.

    The file is written to a temporary file next to ``path`` and renamed onto it atomically, so an
    interrupted or failed write (full disk) never leaves a truncated image or clobbers an old one.

    Raises:
        ValueError: unknown extension, or ``path`` is an existing folder.
        OSError: the file cannot be written (the message names ``path``).
    """
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{p}: is an existing folder, not an image file name")
    fmt = image_format(p)
    img = to_pil(image)
    kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    try:
        atomic_write(p, lambda tmp: img.save(tmp, format=fmt, **kwargs))
    except OSError as exc:
        error = OSError(f"{p}: cannot write the image ({exc.strerror or exc})")
        error.errno = exc.errno
        raise error from None
    return p


def _resize_to(image: torch.Tensor, h: int, w: int) -> torch.Tensor:
    batched = image.dim() == 4
    x = image if batched else image.unsqueeze(0)
    shrinking = h < x.shape[-2] or w < x.shape[-1]
    x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=shrinking).clamp(0, 1)
    return x if batched else x[0]


def resize(image: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize to ``size`` (int: square; or ``(H, W)``), bicubic with antialiasing when shrinking."""
    h, w = (size, size) if isinstance(size, int) else size
    return _resize_to(image, int(h), int(w))


def resize_short_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize keeping the aspect ratio so the short side equals ``size``."""
    h, w = image.shape[-2:]
    scale = size / min(h, w)
    return _resize_to(image, max(1, round(h * scale)), max(1, round(w * scale)))


def resize_long_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize keeping the aspect ratio so the long side equals ``size``."""
    h, w = image.shape[-2:]
    scale = size / max(h, w)
    return _resize_to(image, max(1, round(h * scale)), max(1, round(w * scale)))


def center_crop(image: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Crop the central ``size`` (int: square, or ``(H, W)``) region."""
    ch, cw = (size, size) if isinstance(size, int) else size
    h, w = image.shape[-2:]
    if ch > h or cw > w:
        raise ValueError(f"center_crop: {ch}x{cw} crop is larger than the {h}x{w} image")
    top, left = (h - ch) // 2, (w - cw) // 2
    return image[..., top:top + ch, left:left + cw]


def random_crop(image: torch.Tensor, size: int | tuple[int, int],
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Crop a random ``size`` region (uniform over positions; ``generator`` for reproducibility)."""
    ch, cw = (size, size) if isinstance(size, int) else size
    h, w = image.shape[-2:]
    if ch > h or cw > w:
        raise ValueError(f"random_crop: {ch}x{cw} crop is larger than the {h}x{w} image")
    top = int(torch.randint(0, h - ch + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - cw + 1, (1,), generator=generator))
    return image[..., top:top + ch, left:left + cw]


def as_batch(image: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``(B, C, H, W)`` view of an image ``(C, H, W)`` or a batch, and whether it was a single image
    (to give the caller's result back in the shape it came in)."""
    if image.dim() == 3:
        return image.unsqueeze(0), True
    if image.dim() == 4:
        return image, False
    raise ValueError(f"expected an image (C, H, W) or a batch (B, C, H, W), got shape {tuple(image.shape)}")


def gaussian_kernel1d(sigma: float, radius: int | None = None) -> torch.Tensor:
    """Normalised 1-D Gaussian of standard deviation ``sigma``, truncated at ``radius``
    (default ``ceil(3 * sigma)``, which keeps 99.7% of the mass)."""
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    radius = int(math.ceil(3.0 * sigma)) if radius is None else int(radius)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).float()


def gaussian_blur(image: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Separable Gaussian blur with reflection padding (``(C, H, W)`` or ``(B, C, H, W)``).

    Reflection here is PyTorch's (edge pixel not repeated), i.e. SciPy's ``mode="mirror"``.
    """
    x, single = as_batch(image)
    k = gaussian_kernel1d(sigma).to(x.device, x.dtype if x.is_floating_point() else torch.float32)
    r = k.numel() // 2
    c = x.shape[1]
    if min(x.shape[-2:]) <= r:
        raise ValueError(f"image of {x.shape[-2]}x{x.shape[-1]} px is too small for a sigma={sigma} blur")
    x = F.pad(x.float(), (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)  # horizontal
    x = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)  # vertical
    return x[0] if single else x


def match_histograms(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Match each RGB channel's histogram of ``image`` to ``reference`` (sizes may differ).

    The paper's super-resolution post-processing: the output's colour distribution is matched to
    the low-resolution input's. Uses scikit-image's exact CDF matching.
    """
    from skimage.exposure import match_histograms as _match  # scikit-image's exposure module is slow to import

    src = image.detach().float().cpu().permute(1, 2, 0).numpy()
    ref = reference.detach().float().cpu().permute(1, 2, 0).numpy()
    out = _match(src, ref, channel_axis=-1)
    return torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1).float().clamp(0, 1).to(image.device)


def show_images(images: Sequence[torch.Tensor], titles: Sequence[str] | None = None, ncols: int | None = None,
                size: float = 3.0, suptitle: str | None = None):
    """Show images in a grid with labels (matplotlib); returns the figure."""
    import matplotlib.pyplot as plt  # pyplot is slow to import and only a notebook's figures need it

    images = list(images)
    if not images:
        raise ValueError("show_images: no images")
    ncols = ncols or min(len(images), 4)
    nrows = (len(images) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, img) in enumerate(zip(axes.flat, images)):
        img = img[0] if img.dim() == 4 else img
        ax.imshow(img.detach().float().clamp(0, 1).cpu().permute(1, 2, 0).numpy())
        if titles is not None and i < len(titles):
            ax.set_title(titles[i], fontsize=10)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` (by extension), sorted."""
    root = Path(folder)
    if not root.is_dir():
        raise ImageLoadError(f"{root}: no such folder")
    pattern = root.rglob("*") if recursive else root.glob("*")
    return sorted(p for p in pattern if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
