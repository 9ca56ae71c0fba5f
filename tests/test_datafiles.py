"""Data-root helpers, the offline sample photos, and the environment report."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from perceptual_utils import datafiles as data
from perceptual_utils.config import ENV_DATA, ENV_WEIGHTS


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A small data root in tmp, selected through $PERCEPTUAL_UTILS_DATA."""
    for rel in ("styles/starry_night.jpg", "styles/Wave.PNG", "content/chicago.jpg", "sr/Set5/baby.png",
                "train/t91/a/t1.png"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (10, 20, 30)).save(p, format="PNG")
    (tmp_path / "styles" / "readme.txt").write_text("not an image")
    monkeypatch.setenv(ENV_DATA, str(tmp_path))
    return tmp_path


def test_style_and_content_paths_accept_names_with_or_without_extension(root):
    assert data.style_path("starry_night") == root / "styles" / "starry_night.jpg"
    assert data.style_path("starry_night.jpg") == root / "styles" / "starry_night.jpg"
    assert data.style_path("wave") == root / "styles" / "Wave.PNG"  # case-insensitive
    assert data.content_path("chicago") == root / "content" / "chicago.jpg"
    assert sorted(data.list_styles(), key=str.lower) == ["starry_night", "Wave"]  # txt is not a style


def test_a_path_to_any_file_is_accepted(root, tmp_path):
    own = tmp_path / "elsewhere" / "mine.png"
    own.parent.mkdir()
    Image.new("RGB", (4, 4)).save(own)
    assert data.style_path(str(own)) == own


def test_missing_names_list_what_is_available_and_how_to_fix(root):
    with pytest.raises(data.DataNotFoundError) as info:
        data.style_path("the_scream")
    message = str(info.value)
    assert "the_scream" in message and "starry_night" in message and "Wave" in message
    assert "fetch-data styles" in message and ENV_DATA in message
    with pytest.raises(data.DataNotFoundError, match="sample_image"):
        data.content_path("tubingen")


def test_explicit_root_overrides_the_environment(root, tmp_path_factory):
    other = tmp_path_factory.mktemp("empty")
    with pytest.raises(data.DataNotFoundError, match="available: none"):
        data.style_path("starry_night", root=other)
    assert data.list_styles(root=other) == []


def test_sr_and_train_dirs(root):
    assert data.sr_dataset_dir("set5") == root / "sr" / "Set5"
    with pytest.raises(data.DataNotFoundError, match="Set14.*fetch-data sr"):
        data.sr_dataset_dir("Set14")
    with pytest.raises(ValueError, match="Set5, Set14, BSD100"):
        data.sr_dataset_dir("Urban100")
    assert data.train_dir("t91") == root / "train" / "t91"
    with pytest.raises(data.DataNotFoundError, match="available: t91"):
        data.train_dir("train2014")


def test_shared_data_root_has_the_documented_layout(shared_data):
    assert "starry_night" in data.list_styles(shared_data)
    assert len(list(data.sr_dataset_dir("Set5", shared_data).glob("*.png"))) == 5
    assert data.train_dir("coco_mini", shared_data).is_dir()


@pytest.mark.parametrize("name,size", [("astronaut", (512, 512)), ("chelsea", (300, 451)),
                                       ("coffee", (400, 600)), ("rocket", (427, 640))])
def test_sample_images(name, size):
    t = data.sample_image(name)
    assert t.shape == (3, *size) and t.dtype == torch.float32
    assert 0.0 <= float(t.min()) and float(t.max()) <= 1.0 and float(t.std()) > 0.05
    assert name in data.SAMPLE_IMAGES


def test_unknown_sample_image():
    with pytest.raises(ValueError, match="astronaut, chelsea, coffee, rocket"):
        data.sample_image("lena")


def test_describe_environment_reports_weights_and_data(root):
    info = data.describe_environment()
    assert info["torch"] == torch.__version__
    assert info["data root"] == str(root)
    assert info["styles"] == ", ".join(data.list_styles())
    assert info["sr/Set5"] == "1 images"
    assert info["train/t91"] == "1 images"  # counted recursively
    text = data.format_environment(info)
    assert "data root" in text and str(root) in text


def test_describe_environment_says_how_to_fix_missing_weights_and_data(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_WEIGHTS, str(tmp_path / "absent.safetensors"))
    info = data.describe_environment(root=tmp_path / "nothing")
    assert info["weights"] == "NOT FOUND"
    assert "fetch-weights" in info["weights fix"]
    assert "fetch-data" in info["data fix"]


def test_image_folder_dataset_is_exported_here():
    from perceptual_utils.training_data import ImageFolderDataset

    assert data.ImageFolderDataset is ImageFolderDataset


def test_default_training_data_prefers_full_coco_then_stand_ins(root, tmp_path):
    assert data.default_training_data() == root / "train" / "t91"
    (root / "train" / "coco_mini").mkdir()
    assert data.default_training_data() == root / "train" / "coco_mini"
    (root / "train" / "train2014").mkdir()
    assert data.default_training_data() == root / "train" / "train2014"
    with pytest.raises(data.DataNotFoundError, match="fetch-data coco-mini"):
        data.default_training_data(tmp_path / "empty")


def test_content_photos_top_up_with_samples(root, tmp_path):
    photos = data.content_photos(3, size=16)
    assert [tuple(p.shape) for p in photos] == [(3, 16, 16)] * 3
    # the first is the data root's photo (a flat colour), the others scikit-image's samples
    assert torch.allclose(photos[0], torch.tensor([10, 20, 30]).view(3, 1, 1) / 255, atol=1e-3)
    assert photos[1].std() > 0.05
    assert len(data.content_photos(2, root=tmp_path / "empty")) == 2
    with pytest.raises(ValueError, match="only"):
        data.content_photos(len(data.SAMPLE_IMAGES) + 2, root=tmp_path / "empty")
