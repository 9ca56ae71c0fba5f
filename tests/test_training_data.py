"""Training data: deterministic crops of an image folder, and the step sampler that splits ranks."""
from __future__ import annotations

import torch

from perceptual_utils.training_data import ImageFolderDataset, StepSampler


def test_step_sampler_splits_ranks_disjointly():
    ranks = [list(StepSampler(2, 5, batch_size=3, rank=r, world_size=2)) for r in range(2)]
    assert set(ranks[0]).isdisjoint(ranks[1])
    assert sorted(ranks[0] + ranks[1]) == list(range(2 * 6, 5 * 6))


def test_dataset_is_deterministic(image_folder):
    import warnings

    warnings.simplefilter("ignore")
    a, b = ImageFolderDataset(image_folder, 16, seed=3), ImageFolderDataset(image_folder, 16, seed=3)
    assert all(torch.equal(a[i], b[i]) for i in range(12))
    assert a[0].shape == (3, 16, 16)
    assert not torch.equal(a[0], ImageFolderDataset(image_folder, 16, seed=4)[0])
