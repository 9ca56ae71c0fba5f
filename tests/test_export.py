"""ONNX export: ONNX Runtime on odd sizes gives what PyTorch gives, for every model kind."""
from __future__ import annotations

import json

import pytest
import torch

from perceptual_utils.cli import main
from perceptual_utils.export import export_onnx
from perceptual_utils.model_io import build_model, save_model
from perceptual_utils.shipped_models import list_models

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

#: Built the way model_io builds them (the stored config), small and with non-trivial weights.
KINDS = {
    "style modern": ("style_transfer", {"variant": "modern", "channels": 8, "num_residual": 2}),
    "style multi": ("style_transfer", {"variant": "modern", "channels": 8, "num_residual": 2, "num_styles": 3}),
    "style paper": ("style_transfer", {"variant": "paper", "channels": 8, "num_residual": 1}),
    "sr modern x4": ("super_resolution", {"scale": 4, "channels": 8, "num_residual": 1, "variant": "modern",
                                          "global_residual": True, "norm": "none", "upsample": "nearest",
                                          "padding": "reflect"}),
    "sr paper x2": ("super_resolution", {"scale": 2, "channels": 8, "num_residual": 1}),
}


def _randomised(kind: str, config: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_model(kind, config)
    with torch.no_grad():
        for name, p in net.named_parameters():  # zero-initialised last convs and unit norms would hide errors
            p.add_(torch.randn_like(p) * 0.05)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", sorted(KINDS))
def test_onnx_runtime_matches_pytorch_on_odd_sizes(tmp_path, name):
    kind, config = KINDS[name]
    net = _randomised(kind, config)
    path = export_onnx(net, tmp_path / "m.onnx")
    session = _session(path)
    sizes = [(37, 53), (45, 61)] if config.get("variant") == "paper" and kind == "style_transfer" else [(37, 53), (9, 14)]
    for h, w in sizes:
        x = torch.rand(2, 3, h, w)
        feeds = {"image": x.numpy()}
        with torch.no_grad():
            if config.get("num_styles"):
                weights = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.5, 0.3]])
                feeds["style_weights"] = weights.numpy()
                expected = net(x, style=weights)
            else:
                expected = net(x)
        (out,) = session.run(None, feeds)
        assert out.shape == tuple(expected.shape)
        assert float(abs(out - expected.numpy()).max()) <= 1e-3, (name, h, w)


def test_multi_style_weights_are_normalised_in_the_graph(tmp_path):
    net = _randomised(*KINDS["style multi"])
    session = _session(export_onnx(net, tmp_path / "m.onnx"))
    x = torch.rand(1, 3, 20, 24).numpy()
    a = session.run(None, {"image": x, "style_weights": [[2.0, 0.0, 2.0]]})[0]
    b = session.run(None, {"image": x, "style_weights": [[0.5, 0.0, 0.5]]})[0]
    assert abs(a - b).max() < 1e-5


def test_cli_exports_a_shipped_model(tmp_path, capsys):
    models = list_models("style_transfer")
    if not models:
        pytest.skip("no shipped style models")
    out = tmp_path / "style.onnx"
    assert main(["export", "--model", models[0].name, "--format", "onnx", "--output", str(out)]) == 0
    assert "written" in capsys.readouterr().out
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["kind"] == "style_transfer" and json.loads(meta["config"])["variant"]
    from perceptual_utils.shipped_models import load_model

    net = load_model(models[0].name)
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        expected = net(x).numpy()
    got = _session(out).run(None, {"image": x.numpy()})[0]
    assert float(abs(got - expected).max()) <= 1e-3


def test_cli_refuses_to_overwrite_the_model_file_and_bad_formats(tmp_path, capsys):
    model = tmp_path / "m.safetensors"
    save_model(_randomised(*KINDS["style modern"]), model)
    before = model.read_bytes()
    assert main(["export", "--model", str(model), "--output", str(model)]) == 1
    assert main(["export", "--model", str(model), "--format", "tflite", "--output", str(tmp_path / "x")]) == 1
    assert main(["export", "--model", str(tmp_path / "missing.safetensors"), "--output", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)
    assert "model file itself" in err[0] and "tflite" in err[1]
    assert model.read_bytes() == before and not (tmp_path / "x").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary left behind
