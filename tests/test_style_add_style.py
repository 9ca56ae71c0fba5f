"""A new painting in a trained multi-style network (``train-style --add-to``, style/add_style.py)."""
from __future__ import annotations

import hashlib

import pytest
import torch

from helpers import tiny_training_photos
from perceptual_utils import model_io
from perceptual_utils.cli import main as cli_main
from perceptual_utils.images import load_image, save_image
from perceptual_utils.model_io import ModelFileError
from perceptual_utils.style.add_style import (extend_network, freeze_all_but_style, load_multi_style_source,
                                              style_parameter_count, style_parameters)
from perceptual_utils.style.net import StyleTransferNet
from perceptual_utils.style.stylize import style_names, stylize
from perceptual_utils.style.training import train_style

TINY = dict(channels=4, num_residual=1, variant="modern")


def _source(styles: int = 2, seed: int = 0) -> StyleTransferNet:
    torch.manual_seed(seed)
    net = StyleTransferNet(**TINY, num_styles=styles)
    with torch.no_grad():  # distinct styles, so the mean slot is not just ones and zeros
        for p in style_parameters(net):
            p.add_(0.3 * torch.randn_like(p))
    return net


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_new_slot_starts_at_the_mean_and_everything_else_is_copied():
    src = _source(3)
    net = extend_network(src)
    assert net.num_styles == 4 and net.config["num_styles"] == 4
    for (name, a), b in zip(src.state_dict().items(), net.state_dict().values()):
        if a.shape == b.shape:
            assert torch.equal(a, b), name
        else:
            assert torch.equal(b[:3], a) and torch.allclose(b[3], a.mean(0)), name
    # 2 x (channels of every norm layer): one painting's numbers
    assert style_parameter_count(net) == 2 * sum(p.shape[1] for p in style_parameters(net)[::2])


def test_only_the_new_slot_learns_bit_for_bit():
    net = extend_network(_source(2))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    freeze_all_but_style(net, 2)
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    x = torch.rand(2, 3, 16, 16)
    for _ in range(3):
        opt.zero_grad()
        net(x, style=2).square().mean().backward()
        opt.step()
    changed = 0
    for k, v in net.state_dict().items():
        if v.dim() == 2 and v.shape[0] == 3:  # a conditional norm's (styles, C) gamma or beta
            assert torch.equal(v[:2], before[k][:2]), k
            changed += not torch.equal(v[2], before[k][2])
        else:
            assert torch.equal(v, before[k]), k
    assert changed == len(style_parameters(net))


def test_a_single_style_source_is_refused(tmp_path):
    path = model_io.save_model(StyleTransferNet(**TINY), tmp_path / "one.safetensors", training={"style_name": "x"})
    with pytest.raises(ModelFileError, match="single-style"):
        load_multi_style_source(path)


@pytest.fixture(scope="module")
def add_to_data(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("add_to")
    train, preview = tiny_training_photos(shared_data, root)
    styles = [str(shared_data / "styles" / n) for n in ("starry_night_crop.jpg", "wave_crop.jpg")]
    source = model_io.save_model(_source(2), root / "two.safetensors", training={
        "style": styles, "styles": ["starry_night_crop", "wave_crop"], "style_weights": [2.0, 2.0],
        "style_size": 48, "content_layer": "relu2_2", "style_layers": ["relu1_2", "relu2_2"],
        "content_weight": 1.0, "style_weight": 2.0, "tv_weight": 1.0})
    return train, source, shared_data / "styles" / "udnie.jpg", preview


ADD = dict(batch_size=2, image_size=32, recipe="cpu", checkpoint_every=2, preview_every=3, num_workers=0,
           progress=False, amp=False, device="cpu", memory_format="contiguous", grid_jitter=0)


def test_add_to_learns_only_the_new_style_and_resumes_exactly(add_to_data, tmp_path):
    data, source, painting, preview = add_to_data
    before = _digest(source)
    straight = train_style(painting, data, tmp_path / "a", add_to=source, steps=4, preview_images=preview, **ADD)
    assert _digest(source) == before  # the source file is only read
    new, src = model_io.load_model(straight.model_path), model_io.load_model(source)
    assert new.num_styles == 3 and style_names(new) == ["starry_night_crop", "wave_crop", "udnie"]
    assert straight.history[0]["total"] > 0 and len(straight.history) == 4
    moved = 0
    for k, v in new.state_dict().items():
        old = src.state_dict()[k]
        if v.shape != old.shape:
            assert torch.equal(v[:2], old), k
            moved += not torch.allclose(v[2], old.mean(0))
        else:
            assert torch.equal(v, old), k
    assert moved == len(style_parameters(new))
    assert new.training_info["add_to_digest"] == model_io.stored_digest(source)
    first = train_style(painting, data, tmp_path / "b", add_to=source, steps=4, stop_after=2, preview_images=preview,
                        **ADD)
    assert first.model_path is None
    resumed = train_style(painting, data, tmp_path / "b", add_to=source, steps=4, preview_images=preview, **ADD)
    assert resumed.resumed_from == 2
    assert [r["total"] for r in resumed.history] == [r["total"] for r in straight.history]
    again = model_io.load_model(resumed.model_path)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in new.state_dict().items())
    # the new file works with stylize by the painting's name and in a mix
    photo = tmp_path / "photo.png"
    save_image(preview, photo)
    base = ["stylize", "--model", str(straight.model_path), "--input", str(photo), "--no-progress", "--device", "cpu"]
    assert cli_main(base + ["--style", "udnie", "--output", str(tmp_path / "one.png")]) == 0
    assert cli_main(base + ["--mix", "udnie=0.5,wave_crop=0.5", "--output", str(tmp_path / "mix.png")]) == 0
    one = load_image(tmp_path / "one.png")
    assert torch.allclose(one, stylize(new, load_image(photo), style="udnie"), atol=1 / 255 + 1e-6)
    assert not torch.allclose(one, stylize(new, load_image(photo), style="wave_crop"), atol=1 / 255 + 1e-6)


def test_bad_add_to_inputs_are_one_line_errors(add_to_data, tmp_path, capsys):
    data, source, painting, _ = add_to_data
    single = model_io.save_model(StyleTransferNet(**TINY), tmp_path / "one.safetensors", training={"style_name": "x"})
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    taken = tmp_path / "wave_crop.jpg"
    taken.write_bytes(painting.read_bytes())
    base = ["train-style", "--data", str(data), "--steps", "1", "--no-progress", "--device", "cpu"]
    for style, add_to, match in [(painting, single, "single-style"), (broken, source, "broken.jpg"),
                                 (taken, source, "already has a style named 'wave_crop'"),
                                 (painting, tmp_path / "missing.safetensors", "missing.safetensors"),
                                 (painting, "no_such_model", "neither a model file")]:
        out = tmp_path / f"out_{style.stem}_{getattr(add_to, 'stem', add_to)}"
        assert cli_main(base + ["--style", str(style), "--add-to", str(add_to), "--out", str(out)]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and match in err and "\n" not in err, (style, add_to, err)
    assert cli_main(base + ["--style", str(painting), str(painting), "--add-to", str(source),
                            "--out", str(tmp_path / "two")]) == 1
    assert "one painting" in capsys.readouterr().err
