"""The fast inference path: exact rewrites, precision choice, and one API for every caller."""
from __future__ import annotations

import pytest
import torch

from perceptual_utils.inference import FastModel, choose_path, select_path
from perceptual_utils.inference_layers import ChannelsLastConv, SubpixelUpsampleConv, rewrite_for_cpu
from perceptual_utils.model_io import save_model
from perceptual_utils.sr.net import SuperResolutionNet
from perceptual_utils.sr.upscale import upscale
from perceptual_utils.style.net import StyleTransferNet
from perceptual_utils.style.stylize import stylize


def _randomised(net: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():  # non-trivial weights everywhere (zero-initialised last convs too)
            p.add_(torch.randn_like(p) * 0.1)
    return net.eval()


NETS = {
    "style modern": lambda: StyleTransferNet("modern", channels=8, num_residual=1),
    "style zeros padding": lambda: StyleTransferNet("modern", channels=8, num_residual=1, padding="zeros",
                                                    residual_padding="zeros"),
    "style multi": lambda: StyleTransferNet("modern", channels=8, num_residual=1, num_styles=3),
    "sr modern x4": lambda: SuperResolutionNet(4, channels=8, num_residual=1, variant="modern"),
}


@pytest.mark.parametrize("name", sorted(NETS))
def test_rewrites_compute_the_same_function(name):
    net = _randomised(NETS[name]())
    fast = rewrite_for_cpu(net)
    assert sum(isinstance(m, SubpixelUpsampleConv) for m in fast.modules()) >= 2
    assert any(isinstance(m, ChannelsLastConv) for m in fast.modules())
    style = torch.tensor([[0.2, 0.3, 0.5]]) if "multi" in name else None
    for h, w in ((37, 53), (8, 11)):
        x = torch.rand(2, 3, h, w)
        with torch.no_grad():
            a = net(x) if style is None else net(x, style=style)
            b = fast(x) if style is None else fast(x, style=style)
        assert b.shape == a.shape
        assert (a - b).abs().max() < 1e-5


def test_rewrite_leaves_transposed_convs_and_cuts_the_work():
    from torch.utils.flop_counter import FlopCounterMode

    paper = _randomised(StyleTransferNet("paper", channels=8, num_residual=1))
    assert not any(isinstance(m, SubpixelUpsampleConv) for m in rewrite_for_cpu(paper).modules())
    up = _randomised(NETS["style modern"]()).up[0].eval()  # nearest x2 + reflection pad + 3x3 conv + norm
    x = torch.rand(1, 32, 40, 40)
    flops = []
    for m in (up, rewrite_for_cpu(up)):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            m(x)
        flops.append(counter.get_total_flops())
    # 16 (h + 1)(w + 1) instead of 36 h w multiply-adds per channel pair: 2.25x fewer, less the border
    assert flops[1] < 0.5 * flops[0]


def test_cpu_precision_is_float32_unless_bf16_is_asked_for():
    # bf16 autocast is visibly less exact (benchmarks/inference.py), so never the default
    assert select_path("cpu").precision == "float32"
    assert select_path("cpu", cpu_bf16=True).precision == "bfloat16"
    assert select_path("cpu", amp=False, cpu_bf16=True).precision == "float32"
    with pytest.raises(ValueError, match="threads"):
        select_path("cpu", threads=0)


def test_bf16_path_runs_under_autocast_and_stays_close():
    net = _randomised(NETS["style modern"]())
    fast = choose_path(net, device="cpu", cpu_bf16=True)
    x = torch.rand(1, 3, 24, 24)
    out = fast(x)
    with torch.no_grad():
        ref = net(x)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    # bf16 really used (not bit-equal) and still close (random weights amplify rounding; the trained
    # models' difference is measured in benchmarks/inference.py)
    assert 0 < (out - ref).abs().max() < 0.2


def test_one_prepared_model_for_every_caller(tmp_path):
    net = _randomised(NETS["style multi"]())
    fast = choose_path(net, device="cpu")
    assert isinstance(fast, FastModel) and choose_path(fast) is fast
    assert choose_path(fast.net).net is fast.net  # a prepared network is not prepared again
    assert fast.net.num_styles == 3 and fast.net.config == net.config
    x = torch.rand(3, 30, 34)
    with torch.no_grad():
        ref = net(x[None], style=1)[0].clamp(0, 1)
    assert (stylize(fast.net, x, style=1) - ref).abs().max() < 1e-5
    assert (stylize(fast.net, x, style=1, tile=16, overlap=0) - ref).abs().max() < 1e-4  # the tiler too
    save_model(net, tmp_path / "m.safetensors")
    from_file = choose_path(tmp_path / "m.safetensors", device="cpu")
    assert (from_file(x[None], style=1)[0].clamp(0, 1) - ref).abs().max() < 1e-5


def test_upscale_uses_the_fast_path_and_float32_on_request():
    net = _randomised(NETS["sr modern x4"]())
    x = torch.rand(3, 21, 18)
    with torch.no_grad():
        ref = net(x[None])[0]
    for amp in (True, False):
        out = upscale(net, x, match_histogram=False, tile=None, amp=amp)
        assert out.shape == (3, 84, 72) and (out - ref).abs().max() < 1e-5
    tiled = upscale(choose_path(net, device="cpu").net, x, match_histogram=False, tile=16, overlap=4)
    assert tiled.shape == (3, 84, 72)


def test_onnxruntime_backend_gives_the_torch_result():
    pytest.importorskip("onnxruntime")
    net = _randomised(NETS["style multi"]())
    fast = choose_path(net, device="cpu", amp=False, backend="onnxruntime")
    assert fast.path.backend == "onnxruntime" and "onnxruntime" in fast.path.describe()
    x = torch.rand(2, 3, 29, 35)
    with torch.no_grad():
        for style in (None, 2, torch.tensor([0, 1]), torch.tensor([0.5, 0.5, 0.0])):
            ref = net(x, style=style)
            assert (fast(x, style) - ref).abs().max() < 1e-4
    assert (stylize(fast.net, x[0], style=1) - net(x[:1], style=1)[0].clamp(0, 1)).abs().max() < 1e-4
    with pytest.raises(ValueError, match="backend"):
        choose_path(net, device="cpu", backend="tensorrt")
