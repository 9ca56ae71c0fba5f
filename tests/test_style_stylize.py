"""Stylising: the fast path equals the plain network, tiling is seamless, the CLI's error paths."""
from __future__ import annotations

import json

import pytest
import torch

from perceptual_utils import cli, model_io
from perceptual_utils.images import load_image, save_image
from perceptual_utils.style.net import StyleTransferNet
from perceptual_utils.style.stylize import prepare_model, register_cli, stylize


def _trained_like_net(variant: str = "paper") -> StyleTransferNet:
    """A small net with non-trivial BN statistics (as after training), in eval mode."""
    torch.manual_seed(0)
    net = StyleTransferNet(variant, channels=8, num_residual=2)
    with torch.no_grad():
        for _ in range(2):
            net(torch.rand(2, 3, 40, 40))
    return net.eval()


@pytest.fixture
def model_file(tmp_path):
    return model_io.save_model(_trained_like_net(), tmp_path / "style.safetensors", training={"style_name": "test"})


@pytest.fixture
def run_cli(monkeypatch):
    """``cli.main`` with only the stylize command registered (independent of other modules)."""
    import argparse

    def build():
        parser = argparse.ArgumentParser(prog="perceptual_utils")
        register_cli(parser.add_subparsers(dest="command", required=True))
        return parser

    monkeypatch.setattr(cli, "build_parser", build)
    return cli.main


def test_fast_path_matches_plain_network():
    net = _trained_like_net()
    x = torch.rand(3, 37, 50)
    with torch.no_grad():
        expected = net(x[None])[0]
    out = stylize(net, x)
    assert out.shape == x.shape and out.device.type == "cpu"
    assert torch.allclose(out, expected, atol=1e-5)
    fast = prepare_model(net, device="cpu")
    assert fast.inference_ready and not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert torch.allclose(stylize(fast, x), expected, atol=1e-5)


def test_any_mode_and_batch_shape():
    net = prepare_model(_trained_like_net(), device="cpu")
    assert stylize(net, torch.rand(1, 20, 24)).shape == (3, 20, 24)       # grey -> RGB
    assert stylize(net, torch.rand(4, 20, 24)).shape == (3, 20, 24)       # RGBA -> RGB
    assert stylize(net, torch.rand(2, 3, 20, 24)).shape == (2, 3, 20, 24)
    with pytest.raises(ValueError, match="channels"):
        stylize(net, torch.rand(2, 20, 24))


def test_tiled_equals_whole_away_from_seams():
    net = prepare_model(_trained_like_net(), device="cpu")
    x = torch.rand(3, 150, 190)
    whole = stylize(net, x, tile=0)
    tiled = stylize(net, x, tile=96, overlap=24)
    # Receptive field of this 2-block net: 1 + 8 + 2 + 4 + 4*8 + 4 + 2 + 8 = 61 px, so pixels
    # more than 30 px inside the first tile (and before the first overlap) see no tile border.
    assert torch.allclose(whole[:, :40, :40], tiled[:, :40, :40], atol=1e-5)
    # Across the seams the blend differs only slightly from the whole-image result.
    assert (whole - tiled).abs().mean() < 0.02
    assert not torch.equal(whole, tiled)  # tiling really happened


def test_preserve_color_keeps_chroma():
    from perceptual_utils.color import rgb_to_ycbcr

    net = prepare_model(_trained_like_net(), device="cpu")
    x = torch.rand(3, 32, 32) * 0.5 + 0.25
    out = stylize(net, x, preserve_color=True)
    a, b = rgb_to_ycbcr(out), rgb_to_ycbcr(x)
    assert torch.allclose(a[1:], b[1:], atol=2e-2)
    assert torch.allclose(a[0], rgb_to_ycbcr(stylize(net, x))[0], atol=2e-2)


def test_cli_processes_good_files_and_reports_bad_ones(run_cli, model_file, tmp_path, capsys):
    folder = tmp_path / "in"
    save_image(torch.rand(3, 30, 41), folder / "a.png")
    save_image(torch.rand(3, 25, 25), folder / "b.jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    code = run_cli(["stylize", "--model", str(model_file), "--input", str(folder), str(tmp_path / "missing.jpg"),
                    "--output", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert "broken.png" in err and "missing.jpg" in err
    assert all(line.startswith("error: ") for line in err.strip().splitlines())
    assert load_image(tmp_path / "out" / "a.png").shape == (3, 30, 41)
    assert load_image(tmp_path / "out" / "b.jpg").shape == (3, 25, 25)


def test_cli_single_file_output_name(run_cli, model_file, tmp_path):
    src = save_image(torch.rand(3, 21, 19), tmp_path / "x.png")
    assert run_cli(["stylize", "--model", str(model_file), "--input", str(src), "--output",
                    str(tmp_path / "y.png"), "--preserve-color", "--tile", "256"]) == 0
    assert load_image(tmp_path / "y.png").shape == (3, 21, 19)


def _write_fake_model(path, kind: str) -> None:
    from safetensors.torch import save_file

    meta = {"format": json.dumps(model_io.FORMAT), "kind": json.dumps(kind), "config": json.dumps({})}
    save_file({"w": torch.zeros(1)}, str(path), metadata=meta)


@pytest.mark.parametrize("case, message", [
    ("wrong_kind", "expected a 'style_transfer' model"),
    ("corrupted", "not a readable safetensors"),
    ("missing", "no such model file"),
    ("truncated", "not a readable safetensors"),
])
def test_cli_bad_model_is_one_line_error(run_cli, model_file, tmp_path, capsys, case, message):
    src = save_image(torch.rand(3, 16, 16), tmp_path / "x.png")
    bad = tmp_path / f"{case}.safetensors"
    if case == "wrong_kind":
        _write_fake_model(bad, "super_resolution")
    elif case == "corrupted":
        bad.write_bytes(b"garbage" * 10)
    elif case == "truncated":
        bad.write_bytes(model_file.read_bytes()[:2000])
    code = run_cli(["stylize", "--model", str(bad), "--input", str(src), "--output", str(tmp_path / "o.png")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "o.png").exists()


def test_cli_missing_input_only(run_cli, model_file, tmp_path, capsys):
    code = run_cli(["stylize", "--model", str(model_file), "--input", str(tmp_path / "nope.png"),
                    "--output", str(tmp_path / "o")])
    assert code == 1 and "nope.png" in capsys.readouterr().err


def _randomised_norms(net: torch.nn.Module) -> torch.nn.Module:
    """Give every norm layer non-trivial affine parameters (and BN statistics), as after training."""
    torch.manual_seed(1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.InstanceNorm2d, torch.nn.BatchNorm2d)) and m.weight is not None:
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-1.0, 1.0)
        net.train()
        for _ in range(2):
            net(torch.rand(2, 3, 40, 40))
    return net.eval()


@pytest.mark.parametrize("variant, upsample", [("modern", None), ("paper", None), ("modern", "bilinear")])
def test_tiled_equals_whole_image_for_every_norm(variant, upsample):
    """Instance norm is tiled with whole-image statistics: no patchwork of per-tile contrasts.
    (Bilinear upsampling reads one coarse pixel more on each side: the halo must cover it.)"""
    net = StyleTransferNet(variant, channels=8, num_residual=2, upsample=upsample)
    net = prepare_model(_randomised_norms(net), device="cpu")
    x = torch.rand(3, 230, 301)
    whole = stylize(net, x, tile=0)
    tiled = stylize(net, x, tile=180)
    assert (whole - tiled).abs().mean() <= 1 / 255
    assert (whole - tiled).abs().max() <= 2 / 255


def test_exact_tiling_of_instance_norm_sr_net():
    from perceptual_utils.sr.net import SuperResolutionNet
    from perceptual_utils.tiling import tiled_apply_exact

    net = _randomised_norms(SuperResolutionNet(2, channels=8, num_residual=1, norm="instance"))
    x = torch.rand(1, 3, 70, 61)
    with torch.no_grad():
        whole = net(x)
        tiled = tiled_apply_exact(net, x, tile=48, halo=16, scale=2)
    assert torch.allclose(whole, tiled, atol=1e-5)


def test_negative_overlap_is_refused():
    with pytest.raises(ValueError, match="overlap"):
        stylize(_trained_like_net(), torch.rand(3, 40, 40), tile=32, overlap=-10)


def test_stored_digest_is_the_digest_of_the_saved_tensors(tmp_path):
    from safetensors.torch import load_file

    path = model_io.save_model(StyleTransferNet("modern", channels=8, num_residual=1), tmp_path / "net.safetensors")
    assert model_io.stored_digest(path) == model_io.tensors_digest(load_file(str(path)))
    with pytest.raises(model_io.ModelFileError, match="not a readable"):
        model_io.stored_digest(tmp_path / "missing.safetensors")
