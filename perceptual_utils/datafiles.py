"""The data root's layout, offline sample photos, and an environment report for notebook 00.

The data root (``root`` argument, else ``$PERCEPTUAL_UTILS_DATA``, else the project's ``data/``)
is laid out as::

    styles/      style paintings          starry_night.jpg, wave.jpg, ...
    content/     content photos           chicago.jpg, ...
    sr/          super-resolution sets    Set5/, Set14/, BSD100/  (HR PNGs)
    train/       training image folders   coco_mini/, t91/, train2014/
    weights/     (optional) vgg16_features.safetensors

``python -m perceptual_utils fetch-data all`` fills it on a machine with internet. The sample
photos of scikit-image (:data:`SAMPLE_IMAGES`) need no download at all.
"""
from __future__ import annotations

import os
import platform
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import skimage.data
import torchvision

from .config import ENV_DATA, ENV_PROFILE, ENV_WEIGHTS, data_root, default_device, get_profile
from .images import IMAGE_EXTENSIONS, center_crop, load_image, resize_short_side
from .training_data import ImageFolderDataset  # re-exported: ``perceptual_utils.ImageFolderDataset``
from .vgg.weights import WeightsNotFoundError, resolve_weights

SR_DATASETS = ("Set5", "Set14", "BSD100")

#: Photos that ship inside scikit-image (public domain / CC0), usable with no download.
SAMPLE_IMAGES: dict[str, str] = {
    "astronaut": "Eileen Collins, NASA (public domain)",
    "chelsea": "Chelsea the cat, Stefan van der Walt (CC0)",
    "coffee": "a cup of coffee, Rachel Michetti (CC0)",
    "rocket": "Falcon 9 launch, SpaceX (CC0)",
}

_FIX = (f"run `python -m perceptual_utils fetch-data {{group}}` or set {ENV_DATA} to a data root "
        "laid out like ../shared/data")


class DataNotFoundError(FileNotFoundError):
    """A named file or folder is not in the data root; the message lists what is there and how to fix it."""


def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _find_image(folder: Path, name: str, what: str, fix: str) -> Path:
    """``name`` with or without extension, or an existing path, inside ``folder``."""
    direct = Path(name).expanduser()
    if direct.is_file() and (direct.is_absolute() or direct.parent != Path(".")):
        return direct  # a path to a file anywhere (the user's own image)
    candidates = _images_in(folder)
    wanted = name.lower()
    for p in candidates:  # "starry_night.jpg" or "starry_night" (case-insensitive)
        if p.name.lower() == wanted or p.stem.lower() == wanted:
            return p
    available = ", ".join(p.stem for p in candidates) or "none"
    raise DataNotFoundError(f"no {what} {name!r} in {folder} (available: {available}); {fix}")


def style_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """Path of style image ``name`` (``"starry_night"`` or ``"starry_night.jpg"``) in ``<root>/styles``."""
    return _find_image(data_root(root) / "styles", name, "style image", _FIX.format(group="styles"))


def content_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """Path of content photo ``name`` (with or without extension) in ``<root>/content``."""
    # The demo photos of jcjohnson's projects have no stated licence, so nothing downloads them.
    fix = (f"put your own photos in {data_root(root) / 'content'}, set {ENV_DATA}, or use "
           f"sample_image() with one of {', '.join(SAMPLE_IMAGES)}")
    return _find_image(data_root(root) / "content", name, "content image", fix)


def list_styles(root: str | os.PathLike | None = None) -> list[str]:
    """Names (without extension) of the style images in ``<root>/styles``, sorted."""
    return [p.stem for p in _images_in(data_root(root) / "styles")]


def list_content(root: str | os.PathLike | None = None) -> list[str]:
    """Names (without extension) of the content photos in ``<root>/content``, sorted."""
    return [p.stem for p in _images_in(data_root(root) / "content")]


def sr_dataset_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    """Folder of SR benchmark ``name`` (``Set5``, ``Set14``, ``BSD100``; case-insensitive)."""
    canonical = {n.lower(): n for n in SR_DATASETS}.get(name.lower())
    if canonical is None:
        raise ValueError(f"unknown SR dataset {name!r}; choose from {', '.join(SR_DATASETS)}")
    folder = data_root(root) / "sr" / canonical
    if not _images_in(folder):
        raise DataNotFoundError(f"SR dataset {canonical} not found at {folder}; " + _FIX.format(group="sr"))
    return folder


def train_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    """Training image folder ``<root>/train/<name>`` (``coco_mini``, ``t91``, ``train2014``, ...)."""
    base = data_root(root) / "train"
    folder = base / name
    if not folder.is_dir():
        available = ", ".join(sorted(p.name for p in base.iterdir() if p.is_dir())) if base.is_dir() else "none"
        raise DataNotFoundError(f"no training folder {name!r} in {base} (available: {available}); "
                                + _FIX.format(group="coco"))
    return folder


#: Training folders tried in order under ``<root>/train`` when none is named: the full MS-COCO
#: set of the paper, then the small offline stand-ins.
DEFAULT_TRAIN_DIRS = ("train2014", "coco", "coco_mini", "t91")


def default_training_data(root: str | os.PathLike | None = None) -> Path:
    """The first existing training folder among :data:`DEFAULT_TRAIN_DIRS` under ``<root>/train``."""
    base = data_root(root) / "train"
    for name in DEFAULT_TRAIN_DIRS:
        if (base / name).is_dir():
            return base / name
    raise DataNotFoundError(f"no training images found under {base} (looked for {', '.join(DEFAULT_TRAIN_DIRS)}); "
                            "pass a folder of photos, or " + _FIX.format(group="coco-mini"))


def content_photos(n: int, size: int | None = None, root: str | os.PathLike | None = None) -> list[torch.Tensor]:
    """``n`` photos for evaluation or previews: the data root's ``content/`` photos (sorted), topped up
    with scikit-image's samples when there are fewer, so a notebook never lacks a picture.

    With ``size``, each is resized to ``size`` on its short side and centre-cropped square.
    """
    folder = data_root(root) / "content"
    images = [load_image(p) for p in _images_in(folder)[:n]] if folder.is_dir() else []
    images += [sample_image(name) for name in list(SAMPLE_IMAGES)[: n - len(images)]]
    if len(images) < n:
        raise ValueError(f"asked for {n} photos; only {len(images)} are available")
    if size is not None:
        images = [center_crop(resize_short_side(im, size), size) for im in images]
    return images


def _skimage_loader(name: str) -> Callable[[], np.ndarray]:
    return getattr(skimage.data, name)


def sample_image(name: str) -> torch.Tensor:
    """One of scikit-image's bundled photos (:data:`SAMPLE_IMAGES`) as a ``(3, H, W)`` tensor in [0, 1].

    No download and no data root needed, so notebooks and tests always have a picture.
    """
    if name not in SAMPLE_IMAGES:
        raise ValueError(f"unknown sample image {name!r}; choose from {', '.join(SAMPLE_IMAGES)}")
    arr = np.asarray(_skimage_loader(name)())
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    arr = arr[..., :3]  # drop alpha if any
    scale = 255.0 if arr.dtype == np.uint8 else 1.0
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32) / scale).permute(2, 0, 1).contiguous()


def example_image(path: str | os.PathLike | None = None, *, kind: str = "content", name: str | None = None,
                  size: int | None = None, square: bool = True) -> tuple[torch.Tensor, str]:
    """The image a notebook works on, and where it came from.

    ``path`` (the user's own photo) wins. Otherwise ``data_root()/kind/name`` (e.g. ``content/
    tubingen.jpg``, ``styles/starry_night_crop.jpg``) when the data root has it, else an image that
    ships with scikit-image (``astronaut`` for content, ``chelsea`` otherwise), so notebooks always
    run offline. Resized so the short side is ``size`` and, with ``square``, centre-cropped.
    """
    if path is not None:
        image, source = load_image(path), str(path)
    elif name is not None and (data_root() / kind / name).is_file():
        image, source = load_image(data_root() / kind / name), f"{kind}/{name} (data root)"
    else:
        fallback = "astronaut" if kind == "content" else "chelsea"
        image = sample_image(fallback)
        source = f"skimage.data.{fallback} (fallback: {kind}/{name} not found)"
    if size is not None:
        image = resize_short_side(image, size)
        if square:
            image = center_crop(image, size)
    return image.contiguous(), source




def _count_images(folder: Path, recursive: bool = False) -> int:
    if not folder.is_dir():
        return 0
    files = folder.rglob("*") if recursive else folder.iterdir()
    return sum(1 for p in files if p.suffix.lower() in IMAGE_EXTENSIONS)


def describe_environment(root: str | os.PathLike | None = None) -> dict[str, object]:
    """What notebook 00 reports: versions, device, profile, weights, data root contents.

    Returns a dict; values that are missing come with a ``fix`` entry saying what to do.
    """
    info: dict[str, object] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "device": str(default_device()),
        "cpu threads": torch.get_num_threads(),
        "profile": f"{get_profile().name} (set {ENV_PROFILE} to quick|standard|paper)",
    }
    try:
        info["weights"] = str(resolve_weights(download=False))
    except WeightsNotFoundError:
        info["weights"] = "NOT FOUND"
        info["weights fix"] = (f"run `python -m perceptual_utils fetch-weights`, or set {ENV_WEIGHTS}="
                               "/path/to/vgg16_features.safetensors")
    base = data_root(root)
    info["data root"] = str(base)
    info["styles"] = ", ".join(list_styles(base)) or "none"
    info["content"] = ", ".join(list_content(base)) or "none"
    for name in SR_DATASETS:
        info[f"sr/{name}"] = f"{_count_images(base / 'sr' / name)} images"
    train = base / "train"
    if train.is_dir():
        for folder in sorted(p for p in train.iterdir() if p.is_dir()):
            info[f"train/{folder.name}"] = f"{_count_images(folder, recursive=True)} images"
    if not (base / "styles").is_dir():
        info["data fix"] = (f"run `python -m perceptual_utils fetch-data all` (or `styles`, `sr`, `coco`), "
                            f"or set {ENV_DATA}; the scikit-image samples need nothing: {', '.join(SAMPLE_IMAGES)}")
    return info


def format_environment(info: dict[str, object]) -> str:
    """``describe_environment()`` as aligned ``key: value`` lines."""
    width = max(len(k) for k in info)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in info.items())


__all__ = ["SAMPLE_IMAGES", "SR_DATASETS", "DataNotFoundError", "ImageFolderDataset", "style_path", "content_path",
           "list_styles", "list_content", "sr_dataset_dir", "train_dir", "sample_image", "describe_environment",
           "format_environment", "example_image", "content_photos", "default_training_data"]
