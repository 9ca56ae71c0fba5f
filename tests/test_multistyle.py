"""One network, several styles (conditional instance norm): selection and mixing, strength,
single-style files unchanged, tiny 2-style training with exact resume, tiled == untiled."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import tiny_training_photos
from perceptual_utils import model_io
from perceptual_utils.blocks import ConditionalInstanceNorm2d
from perceptual_utils.cli import main as cli_main
from perceptual_utils.images import save_image
from perceptual_utils.style.data import StyleIndexedDataset
from perceptual_utils.style.net import StyleTransferNet
from perceptual_utils.style.training import train_style
from perceptual_utils.style.stylize import parse_mix, resolve_style, style_names, stylize

ROOT = Path(__file__).resolve().parents[1]
TINY_NET = dict(variant="modern", channels=4, num_residual=1)


def _net(num_styles: int = 2, seed: int = 0) -> StyleTransferNet:
    """A tiny multi-style network whose styles differ (random per-style scales and shifts)."""
    torch.manual_seed(seed)
    net = StyleTransferNet(**TINY_NET, num_styles=num_styles)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, ConditionalInstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    net.training_info = {"styles": ["starry", "wave"][:num_styles] + [f"s{i}" for i in range(2, num_styles)]}
    return net.eval()


def _photo(h: int = 32, w: int = 32, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, h, w, generator=g)


# ----------------------------------------------------------------------------- network

def test_single_style_network_is_todays_network():
    one, plain = StyleTransferNet(**TINY_NET, num_styles=1), StyleTransferNet(**TINY_NET)
    assert one.config == plain.config and "num_styles" not in one.config
    assert {k: v.shape for k, v in one.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}
    assert not any(isinstance(m, ConditionalInstanceNorm2d) for m in one.modules())
    x = _photo()[None]
    with torch.no_grad():  # a single-style network accepts (and ignores) style 0 / [w]
        assert torch.equal(one(x), one(x, style=0)) and torch.equal(one(x), one(x, style=torch.tensor([2.0])))


def test_multi_style_network_shares_everything_but_the_norms():
    net = StyleTransferNet(**TINY_NET, num_styles=3)
    assert net.config["num_styles"] == 3 and StyleTransferNet(**net.config).config == net.config
    one = StyleTransferNet(**TINY_NET).state_dict()
    for k, v in net.state_dict().items():
        norm = any(isinstance(m, ConditionalInstanceNorm2d) and k.startswith(n + ".") for n, m in net.named_modules())
        assert v.shape == ((3,) + tuple(one[k].shape) if norm else one[k].shape), k
    assert model_io.check_config("style_transfer", net.config) is net.config
    with pytest.raises(ValueError, match="instance"):
        StyleTransferNet(variant="paper", num_styles=2)
    with pytest.raises(model_io.ModelFileError, match="num_styles"):
        model_io.check_config("style_transfer", dict(net.config, num_styles=65))


def test_index_per_image_and_one_hot_selections_agree_exactly():
    net, x = _net(), torch.stack([_photo(seed=1), _photo(seed=2)])
    with torch.no_grad():
        a, b = net(x, style=0), net(x, style=1)
        assert (a - b).abs().mean() > 1e-3  # the styles really differ
        assert torch.equal(net(x), a)  # default: style 0
        assert torch.equal(net(x, style=torch.tensor([0.0, 1.0])), b)
        assert torch.equal(net(x, style=torch.tensor([0.0, 3.0])), b)  # normalised
        per_image = net(x, style=torch.tensor([1, 0]))
        assert torch.equal(per_image[0], b[0]) and torch.equal(per_image[1], a[1])
        rows = net(x, style=torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        assert torch.equal(rows, per_image)
        half = net(x, style=torch.tensor([0.5, 0.5]))
        assert not torch.equal(half, a) and not torch.equal(half, b)
    for bad, match in [(2, "out of range"), (torch.tensor([-1.0, 2.0]), "non-negative"),
                       (torch.tensor([0.0, 0.0]), "sum must be > 0"), (torch.tensor([1.0, 0.0, 0.0]), "2 entries"),
                       (torch.tensor([0, 1, 1]), "batch of 2"), (torch.tensor([float("nan"), 1.0]), "finite")]:
        with pytest.raises(ValueError, match=match):
            net(x, style=bad)


# ----------------------------------------------------------------------------- stylize API

def test_mix_weights_are_validated_with_clear_errors():
    net = _net()
    assert style_names(net) == ["starry", "wave"]
    for mix, match in [({"starry": -0.5, "wave": 1.0}, "non-negative"), ({"starry": 0.0, "wave": 0}, "sum to 0"),
                       ({"nope": 1.0}, "unknown style 'nope'; known: starry, wave"), ({}, "at least one"),
                       ({"wave": "x"}, "must be a number"), ({"wave": float("inf")}, "non-negative"),
                       ({5: 1.0}, "out of range")]:
        with pytest.raises(ValueError, match=match):
            stylize(net, _photo(), mix=mix)
    with pytest.raises(ValueError, match="unknown style"):
        stylize(net, _photo(), style="nope")
    with pytest.raises(ValueError, match="not both"):
        stylize(net, _photo(), style="wave", mix={"wave": 1})
    for bad in (-0.1, 1.5, float("nan"), "lots"):
        with pytest.raises(ValueError, match="strength"):
            stylize(net, _photo(), strength=bad)
    assert torch.allclose(resolve_style(net, mix={"starry": 3, "1": 1}), torch.tensor([0.75, 0.25]))
    assert parse_mix("starry=0.7, wave=0.3") == {"starry": 0.7, "wave": 0.3}
    with pytest.raises(ValueError, match="NAME=WEIGHT"):
        parse_mix("starry:0.7")


def test_one_hot_mix_equals_the_single_style_path_exactly():
    net, photo = _net(), _photo()
    by_name = stylize(net, photo, style="wave")
    assert torch.equal(stylize(net, photo, mix={"wave": 1.0}), by_name)
    assert torch.equal(stylize(net, photo, mix={"starry": 0.0, "wave": 2.0}), by_name)
    assert torch.equal(stylize(net, photo, style=1), by_name)
    assert not torch.equal(stylize(net, photo, style="starry"), by_name)


def test_strength_blends_toward_the_photo():
    net, photo = _net(), _photo()
    assert torch.allclose(stylize(net, photo, style="wave", strength=0.0), photo, atol=1e-6)
    full = stylize(net, photo, style="wave")
    assert torch.equal(stylize(net, photo, style="wave", strength=1.0), full)
    half = stylize(net, photo, style="wave", strength=0.5)
    assert torch.allclose(half, 0.5 * (full + photo), atol=1e-6)
    # single-style networks too
    single = StyleTransferNet(**TINY_NET).eval()
    assert torch.allclose(stylize(single, photo, strength=0.0), photo, atol=1e-6)


def test_tiled_multi_style_equals_untiled():
    net = _net()
    image = _photo(200, 168, seed=3)
    for kw in ({"style": "wave"}, {"mix": {"starry": 0.3, "wave": 0.7}}):
        whole = stylize(net, image, tile=0, **kw)
        tiled = stylize(net, image, tile=112, overlap=0, **kw)
        assert (tiled - whole).abs().mean() < 1 / 255 and (tiled - whole).abs().max() < 1e-3, kw
    # and the tiles really use the chosen style
    assert (stylize(net, image, tile=112, overlap=0, style="starry") - whole).abs().mean() > 1e-3


# ----------------------------------------------------------------------------- model files

def test_single_and_multi_style_files_round_trip(tmp_path):
    torch.manual_seed(0)
    single = StyleTransferNet(**TINY_NET)
    path = model_io.save_model(single, tmp_path / "single.safetensors", training={"style_name": "starry"})
    loaded = model_io.load_model(path, kind="style_transfer")
    assert loaded.config == single.config and "num_styles" not in model_io.read_model_metadata(path)["config"]
    assert list(loaded.state_dict()) == list(single.state_dict())
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in single.state_dict().items())
    assert style_names(loaded) == ["starry"]
    assert torch.equal(stylize(loaded, _photo(), style="starry"), stylize(single, _photo()))

    multi = _net()
    path = model_io.save_model(multi, tmp_path / "multi.safetensors", training=multi.training_info)
    back = model_io.load_model(path, kind="style_transfer")
    assert back.num_styles == 2 and style_names(back) == ["starry", "wave"]
    assert torch.equal(stylize(back, _photo(), style="wave"), stylize(multi, _photo(), style="wave"))


@pytest.mark.parametrize("path", sorted((ROOT / "models").glob("*.safetensors")), ids=lambda p: p.name)
def test_shipped_model_files_still_load(path):
    meta = model_io.read_model_metadata(path)
    if meta.get("kind") != "style_transfer":
        pytest.skip("not a style model")
    net = model_io.load_model(path, kind="style_transfer")
    assert net.config == meta["config"]
    assert net.num_styles == meta["config"].get("num_styles", 1)


# ----------------------------------------------------------------------------- command line

def test_cli_reports_bad_styles_on_one_line(tmp_path, capsys):
    model = model_io.save_model(_net(), tmp_path / "two.safetensors", training={"styles": ["starry", "wave"]})
    photo = tmp_path / "photo.png"
    save_image(_photo(), photo)
    base = ["stylize", "--model", str(model), "--input", str(photo), "--output", str(tmp_path / "out.png"),
            "--no-progress", "--device", "cpu"]
    for extra, match in [(["--mix", "starry=-1,wave=1"], "non-negative"), (["--mix", "starry=0,wave=0"], "sum to 0"),
                         (["--mix", "monet=1"], "unknown style 'monet'"), (["--style", "monet"], "unknown style"),
                         (["--style", "7"], "out of range"), (["--strength", "2"], "strength"),
                         (["--mix", "starry"], "NAME=WEIGHT")]:
        assert cli_main(base + extra) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and match in err and "\n" not in err, (extra, err)
    assert not (tmp_path / "out.png").exists()
    assert cli_main(base + ["--mix", "starry=0.7,wave=0.3", "--strength", "0.5"]) == 0
    assert (tmp_path / "out.png").is_file()
    assert cli_main(base + ["--style", "wave"]) == 0


# ----------------------------------------------------------------------------- training

def test_style_of_a_step_is_a_pure_function_of_the_step():
    ds = StyleIndexedDataset(list(range(40)), num_styles=3, samples_per_step=4)
    assert [ds[i][1] for i in range(0, 40, 4)] == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    assert {ds[i][1] for i in range(8, 12)} == {2} and ds[13] == (13, 0)


TINY_TRAIN = dict(batch_size=2, image_size=32, style_size=48, recipe="paper", variant="modern", channels=4,
                  num_residual=1, style_layers=("relu1_2", "relu2_2"), checkpoint_every=2, preview_every=3,
                  num_workers=0, progress=False, lr=5e-3, amp=False, device="cpu")


@pytest.fixture(scope="module")
def two_style_data(shared_data, tmp_path_factory):
    train, preview = tiny_training_photos(shared_data, tmp_path_factory.mktemp("multistyle_data"))
    styles = [shared_data / "styles" / "starry_night_crop.jpg", shared_data / "styles" / "wave_crop.jpg"]
    return train, styles, preview


def test_two_style_training_runs_and_resumes_exactly(two_style_data, tmp_path):
    data, styles, preview = two_style_data

    def run(out, **kw):
        return train_style(styles, data, out, preview_images=preview,
                           **(TINY_TRAIN | {"style_weights": [2.0, 3.0]} | kw))

    straight = run(tmp_path / "a", steps=4)
    totals = [r["total"] for r in straight.history]
    assert len(totals) == 4 and all(map(torch.isfinite, torch.tensor(totals)))
    first = run(tmp_path / "b", steps=4, stop_after=2)
    assert first.model_path is None
    resumed = run(tmp_path / "b", steps=4)
    assert resumed.resumed_from == 2 and [r["total"] for r in resumed.history] == totals
    a, b = model_io.load_model(straight.model_path), model_io.load_model(resumed.model_path)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert a.config["num_styles"] == 2 and a.num_styles == 2
    info = a.training_info
    assert info["styles"] == ["starry_night_crop", "wave_crop"] and info["style_weights"] == [2.0, 3.0]
    assert style_names(a) == info["styles"]
    out = stylize(a, preview, style="wave_crop")
    assert out.shape == preview.shape
    with pytest.raises(ValueError, match="one weight per style"):
        run(tmp_path / "c", steps=2, style_weights=[1.0])


def test_train_style_cli_takes_several_styles_and_weights():
    from perceptual_utils.cli import build_parser

    args = build_parser().parse_args(["train-style", "--style", "a.jpg", "b.jpg", "c.jpg", "--data", "d",
                                      "--out", "o", "--style-weights", "2", "3", "2"])
    assert args.style == ["a.jpg", "b.jpg", "c.jpg"] and args.style_weights == [2.0, 3.0, 2.0]
    one = build_parser().parse_args(["train-style", "--style", "a.jpg", "--data", "d", "--out", "o"])
    assert one.style == ["a.jpg"] and one.style_weights is None
