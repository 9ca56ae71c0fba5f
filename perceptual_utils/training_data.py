"""Training data: an image folder served as deterministic random crops.

Samples are addressed by a *global sample number* ``i`` rather than a file index: sample ``i``
is file ``perm_e[i mod n]`` of epoch ``e = i // n`` (a fresh seeded permutation each epoch),
cropped at a position drawn from a generator seeded by ``(seed, i)``. The data a training step
sees is therefore a pure function of the step number, which makes resuming exact and makes
data-parallel ranks disjoint without any shared state (see :class:`StepSampler`).
"""
from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

from .errors import one_line
from .images import ImageLoadError, list_images, load_image, random_crop, resize_short_side


def one_line_warnings(worker_id: int) -> None:
    """A ``DataLoader`` ``worker_init_fn``: a worker's warnings (a skipped unreadable image) are
    printed as one line, ``warning: ...``, like the command line prints the main process's, not
    as Python's two lines with the source line (a worker's stderr cannot reach ``cli.main``)."""
    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001 (warnings' signature)
        print(f"warning: {one_line(str(message).splitlines()[0])}", file=sys.stderr)

    warnings.showwarning = show


#: Folders with at most this many images are cached in memory by default.
CACHE_MAX_FILES = 2000


class ImageFolderDataset(Dataset):
    """Random ``size x size`` crops of the images under ``root`` (searched recursively).

    Args:
        root: folder of images (MS-COCO ``train2014``, ``coco_mini``, ``t91``, ...).
        size: crop side in pixels.
        resize_short: resize so the short side is this many pixels before cropping (default:
            ``size``, i.e. the crop spans the short side, as when training on COCO at 256x256).
            Images whose short side is below ``size`` are always enlarged to ``size``.
        transform: optional function applied to each crop, e.g. to make an (LR, HR) pair.
        seed: seeds the per-epoch file order and the crop positions.

        cache: keep decoded (and resized) images in memory as 8-bit tensors, so each file is
            decoded once per process instead of once per sample. ``None`` (default) caches
            folders of at most :data:`CACHE_MAX_FILES` images (the 239-photo COCO sample takes
            about 60 MB at a 256 px short side).
        size_schedule: ``[(first_step, crop_size), ...]``: the crop size changes with the
            training step (e.g. most steps at 128 px, then a fine-tune at 256 px); ``size`` is
            then the largest size. Needs ``samples_per_step`` (batch size x processes).
        samples_per_step: how many consecutive sample numbers make one training step.

    ``resize_short=0`` keeps every image at its own scale (only images smaller than the crop
    are enlarged): what super-resolution wants, whose HR patches should look like HR photos.

    Unreadable files are skipped (the next file is used instead) and reported once with a
    warning, so one bad file cannot crash a long training run.
    """

    def __init__(self, root: str | os.PathLike, size: int, resize_short: int | None = None,
                 transform: Callable[[torch.Tensor], Any] | None = None, seed: int = 0,
                 cache: bool | None = None, size_schedule: Sequence[tuple[int, int]] | None = None,
                 samples_per_step: int = 1):
        self.root = Path(root)
        self.files = list_images(self.root)
        if not self.files:
            raise ImageLoadError(f"{self.root}: no image files found (looked for .jpg, .png, ...)")
        self.size = int(size)
        self.keep_scale = resize_short == 0
        self.resize_short = self.size if resize_short is None or self.keep_scale else int(resize_short)
        if self.resize_short < self.size:
            raise ValueError(f"resize_short ({self.resize_short}) must be at least the crop size ({self.size})")
        self.size_schedule = sorted((int(a), int(b)) for a, b in size_schedule) if size_schedule else None
        if self.size_schedule and (self.size_schedule[0][0] != 0 or max(b for _, b in self.size_schedule) > self.size
                                   or min(b for _, b in self.size_schedule) < 1):
            raise ValueError(f"size_schedule must start at step 0 with crop sizes in 1..{self.size}, "
                             f"got {self.size_schedule}")
        self.samples_per_step = max(1, int(samples_per_step))
        self.transform = transform
        self.seed = int(seed)
        self.cache = len(self.files) <= CACHE_MAX_FILES if cache is None else bool(cache)
        self._cache: dict[Path, torch.Tensor] = {}
        self.skipped: set[Path] = set()
        self._perm_epoch = -1
        self._perm: torch.Tensor | None = None

    def crop_size(self, sample: int) -> int:
        """The crop side of global sample ``sample`` (the size schedule's stage of its step)."""
        if not self.size_schedule:
            return self.size
        step = int(sample) // self.samples_per_step
        size = self.size_schedule[0][1]
        for first, s in self.size_schedule:
            if step >= first:
                size = s
        return size

    def _decoded(self, path: Path) -> torch.Tensor:
        """The image resized for cropping; from the in-memory cache when enabled (8-bit there)."""
        if self.cache and path in self._cache:
            return self._cache[path].float() / 255.0
        image = load_image(path)
        short = min(image.shape[-2:])
        if self.keep_scale:
            if short < self.size:
                image = resize_short_side(image, self.size)
        elif short != self.resize_short:
            image = resize_short_side(image, self.resize_short)
        if self.cache:
            self._cache[path] = torch.round(image.clamp(0, 1) * 255).to(torch.uint8)
            return self._cache[path].float() / 255.0
        return image

    def __len__(self) -> int:
        return len(self.files)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(len(self.files), generator=g)
            self._perm_epoch = epoch
        return self._perm

    def load_crop(self, path: Path, sample: int) -> torch.Tensor:
        image = self._decoded(path)
        g = torch.Generator().manual_seed((self.seed * 2_654_435_761 + sample) % (2**63))
        return random_crop(image, self.crop_size(sample), generator=g).contiguous()

    def __getitem__(self, sample: int):
        n = len(self.files)
        epoch, pos = divmod(int(sample), n)
        perm = self._permutation(epoch)
        for attempt in range(n):
            path = self.files[int(perm[(pos + attempt) % n])]
            try:
                crop = self.load_crop(path, sample)
                break
            except ImageLoadError as exc:
                if path not in self.skipped:
                    self.skipped.add(path)
                    warnings.warn(f"skipping unreadable training image: {exc}", stacklevel=2)
        else:
            raise ImageLoadError(f"{self.root}: none of the {n} image files could be read")
        return self.transform(crop) if self.transform is not None else crop


class StepSampler(Sampler[int]):
    """Yield the global sample numbers that ``rank`` of ``world_size`` processes uses for steps
    ``start_step .. steps-1`` with ``batch_size`` images per process and step.

    Step ``s`` of the whole job consumes samples ``[s*B*W, (s+1)*B*W)``; rank ``r`` takes
    ``s*B*W + r*B + j`` for ``j < B``. Resuming at step ``s`` is just a new sampler.
    """

    def __init__(self, start_step: int, steps: int, batch_size: int, rank: int = 0, world_size: int = 1):
        self.start_step, self.steps, self.batch_size = int(start_step), int(steps), int(batch_size)
        self.rank, self.world_size = int(rank), int(world_size)

    def __iter__(self) -> Iterator[int]:
        per_step = self.batch_size * self.world_size
        for step in range(self.start_step, self.steps):
            base = step * per_step + self.rank * self.batch_size
            yield from range(base, base + self.batch_size)

    def __len__(self) -> int:
        return max(0, self.steps - self.start_step) * self.batch_size
