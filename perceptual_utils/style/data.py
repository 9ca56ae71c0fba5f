"""What a style network trains and is previewed on, besides the photos themselves: the crop-size
schedule of a run (:func:`crop_schedule`), the style of each step of a multi-style run
(:class:`StyleIndexedDataset`) and the fixed preview photos (:func:`default_preview_images`)."""
from __future__ import annotations

import os

import torch

from ..datafiles import content_photos


class StyleIndexedDataset(torch.utils.data.Dataset):
    """Wrap a step-indexed dataset (e.g. :class:`ImageFolderDataset`) for multi-style training:
    sample ``i`` is ``(image, style)`` with ``style = (i // samples_per_step) % num_styles``.

    So every batch (all processes of a step) has one style, the styles take turns step by step
    (each gets the same share of the steps and of every crop-size stage), and the style of a step
    is a pure function of the step number, which keeps exact resume exact.
    """

    def __init__(self, dataset: torch.utils.data.Dataset, num_styles: int, samples_per_step: int):
        self.dataset, self.num_styles, self.samples_per_step = dataset, int(num_styles), max(1, int(samples_per_step))

    def style_of_step(self, step: int) -> int:
        return int(step) % self.num_styles

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, sample: int):
        return self.dataset[sample], self.style_of_step(int(sample) // self.samples_per_step)


def default_preview_images(size: int, root: str | os.PathLike | None = None, count: int = 4) -> torch.Tensor:
    """Fixed validation photos for previews: the demo photos in ``<data root>/content`` (never in
    the training folder), topped up with scikit-image's samples; ``(count, 3, size, size)``."""
    return torch.stack(content_photos(count, size, root))


def crop_schedule(steps: int, image_size: int, fine_tune_size: int | None,
                  fine_tune_fraction: float) -> list[tuple[int, int]]:
    """``[(first_step, crop_size), ...]``: ``image_size`` crops, then the last
    ``fine_tune_fraction`` of the steps at ``fine_tune_size``."""
    if not fine_tune_size or fine_tune_fraction <= 0 or fine_tune_size == image_size:
        return [(0, int(image_size))]
    if not 0 < fine_tune_fraction < 1:
        raise ValueError(f"fine_tune_fraction must be in [0, 1), got {fine_tune_fraction}")
    first = max(1, int(round(steps * (1 - fine_tune_fraction))))
    return [(0, int(image_size)), (first, int(fine_tune_size))] if first < steps else [(0, int(image_size))]
