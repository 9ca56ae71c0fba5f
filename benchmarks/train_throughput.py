"""Training throughput on this machine: ``python benchmarks/train_throughput.py``.

Images per second of one training step (forward, backward, Adam) of

- **ours, style**: the cpu recipe's step (``StyleTransferNet("modern")``, :class:`PerceptualLoss`
  with the content target's VGG pass stopped at ``relu2_2``, bf16 autocast where the CPU has
  native bf16, contiguous memory layout);
- **peer, style**: a re-creation of pytorch/examples' ``fast_neural_style`` training step: its
  ``TransformerNet`` (reflection-padded convs, instance norm, five residual blocks, nearest
  upsampling + conv), VGG-16 up to ``relu4_3`` on *both* the output and the input, MSE content
  loss at ``relu2_2``, MSE between Gram matrices, float32 (what that script does on a CPU);
- **ours, SR**: the cpu recipe's x4 step (modern network, 96 px HR patches) with the feature and the
  per-pixel loss, and the paper's x4 network in float32 for reference;

on the same batch sizes and image sizes, in one process, interleaved (round-robin), reporting
medians after warm-up, so background load hits all of them alike. Results:
``benchmarks/results/train_throughput_<threads>t.json``, or ``train_throughput_<threads>t_bf16.json`` on a CPU
with native bf16 (where "ours" runs in bf16 autocast), so the two kinds of machine keep separate records.

Also tried and measured here (``--variants``): channels-last with and without bf16 (style and SR), and
``torch.compile`` (kept only behind a flag if it wins by >= 1.2x including its compile time).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import vgg as tv_vgg

from perceptual_utils.config import autocast_dtype, cpu_has_native_bf16, machine_description
from perceptual_utils.vgg.network import IMAGENET_MEAN, IMAGENET_STD
from perceptual_utils.losses import PerceptualLoss
from perceptual_utils.model_io import atomic_write
from perceptual_utils.sr.net import SuperResolutionNet
from perceptual_utils.sr.training import SRLoss
from perceptual_utils.style.net import StyleTransferNet
from perceptual_utils.vgg.weights import load_vgg16_features_state, resolve_weights

RESULTS = Path(__file__).resolve().parent / "results"


# ----------------------------------------------------------------------------- the peer recipe

class PeerConv(nn.Sequential):
    """Reflection pad + conv, as the peer's ``ConvLayer``."""

    def __init__(self, cin: int, cout: int, k: int, stride: int):
        super().__init__(nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, stride))


class PeerUpsampleConv(nn.Module):
    """Nearest-neighbour x2 (``F.interpolate``), reflection pad, conv: the peer's ``UpsampleConvLayer``."""

    def __init__(self, cin: int, cout: int, k: int):
        super().__init__()
        self.conv = PeerConv(cin, cout, k, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class PeerResidual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.c1, self.n1 = PeerConv(c, c, 3, 1), nn.InstanceNorm2d(c, affine=True)
        self.c2, self.n2 = PeerConv(c, c, 3, 1), nn.InstanceNorm2d(c, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.n2(self.c2(F.relu(self.n1(self.c1(x)))))


class PeerTransformerNet(nn.Module):
    """The peer's image transformation network (32-64-128 channels, 5 residual blocks)."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        for cin, cout, k, s in ((3, 32, 9, 1), (32, 64, 3, 2), (64, 128, 3, 2)):
            layers += [PeerConv(cin, cout, k, s), nn.InstanceNorm2d(cout, affine=True), nn.ReLU()]
        layers += [PeerResidual(128) for _ in range(5)]
        for cin, cout in ((128, 64), (64, 32)):
            layers += [PeerUpsampleConv(cin, cout, 3), nn.InstanceNorm2d(cout, affine=True), nn.ReLU()]
        layers += [PeerConv(32, 3, 9, 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class PeerVgg16(nn.Module):
    """VGG-16 up to relu4_3, returning relu1_2, relu2_2, relu3_3, relu4_3 (the peer's ``Vgg16``)."""

    def __init__(self):
        super().__init__()
        features = tv_vgg.make_layers(tv_vgg.cfgs["D"], batch_norm=False)[:23]
        state = load_vgg16_features_state(resolve_weights(None))
        features.load_state_dict({k: v for k, v in state.items() if int(k.split(".")[0]) < 23})
        self.slices = nn.ModuleList([features[:4], features[4:9], features[9:16], features[16:23]])
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for s in self.slices:
            x = s(x)
            out.append(x)
        return out


def peer_gram(y: torch.Tensor) -> torch.Tensor:
    b, c, h, w = y.shape
    f = y.view(b, c, h * w)
    return f.bmm(f.transpose(1, 2)) / (c * h * w)


def peer_normalize(batch: torch.Tensor) -> torch.Tensor:
    """The peer's inputs are 0-255; it divides by 255 and applies the ImageNet mean/std."""
    mean = batch.new_tensor(IMAGENET_MEAN).view(-1, 1, 1)
    std = batch.new_tensor(IMAGENET_STD).view(-1, 1, 1)
    return (batch / 255.0 - mean) / std


def make_peer_step(style: torch.Tensor, batch: torch.Tensor):
    net, vgg = PeerTransformerNet().train(), PeerVgg16().eval()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x = batch * 255.0
    with torch.no_grad():
        grams = [peer_gram(f) for f in vgg(peer_normalize(style[None] * 255.0))]

    def step() -> None:
        opt.zero_grad()
        y = net(x)
        fy, fx = vgg(peer_normalize(y)), vgg(peer_normalize(x))
        content = 1e5 * F.mse_loss(fy[1], fx[1])
        style_loss = 1e10 * sum(F.mse_loss(peer_gram(a), g.expand(a.shape[0], -1, -1)) for a, g in zip(fy, grams))
        (content + style_loss).backward()
        opt.step()

    return step


# ----------------------------------------------------------------------------- ours

def make_our_style_step(style: torch.Tensor, batch: torch.Tensor, bf16: bool, channels_last: bool = False,
                        compile_net: bool = False):
    net = StyleTransferNet("modern").train()
    perceptual = PerceptualLoss(style_weight=2.0)
    perceptual.set_style(style)
    x = batch
    if channels_last:
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        perceptual.loss_network.to(memory_format=torch.channels_last)
    model = torch.compile(net) if compile_net else net
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    dtype = autocast_dtype(torch.device("cpu")) if bf16 else None

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            total = perceptual(model(x), content=x)["total"]
        total.backward()
        opt.step()

    return step


def make_our_sr_step(loss: str, batch_size: int, patch: int, variant: str, bf16: bool, channels_last: bool = False):
    net = SuperResolutionNet(4, variant=variant).train()
    loss_fn = SRLoss(loss)
    hr = torch.rand(batch_size, 3, patch, patch)
    lr = F.interpolate(hr, scale_factor=0.25, mode="bicubic", antialias=True)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        hr, lr = (t.contiguous(memory_format=torch.channels_last) for t in (hr, lr))
    opt = torch.optim.Adam(net.parameters(), 5e-4)
    dtype = autocast_dtype(torch.device("cpu")) if bf16 else None

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            total = loss_fn(net, (lr, hr))["total"]
        total.backward()
        opt.step()

    return step


def round_robin(calls: dict, rounds: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds of each call in each of ``rounds`` rounds after ``warmup`` untimed ones, the calls taken
    in turn within a round so a machine that slows down or speeds up (another program, clocks) weighs
    on all of them alike. Also the timer of ``inference.py``."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for r in range(warmup + rounds):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
    return times


def measure(steps: dict, images: dict, rounds: int, warmup: int = 1) -> dict:
    """Round-robin over the step functions (:func:`round_robin`); median seconds per step -> images/s."""
    times = round_robin(steps, rounds, warmup)
    return {name: {"seconds_per_step": statistics.median(t), "images_per_second": images[name] / statistics.median(t),
                   "all_seconds": t} for name, t in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--variants", action="store_true", help="also the channels-last combinations")
    p.add_argument("--compile", action="store_true", help="also torch.compile (slow to compile on a CPU)")
    p.add_argument("--no-sr", action="store_true")
    p.add_argument("--no-style", action="store_true", help="only the SR step")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    style = torch.rand(3, 256, 256)
    native_bf16 = cpu_has_native_bf16()
    report = {"machine": machine_description(args.threads),
              "bf16": str(autocast_dtype(torch.device("cpu"))), "batch": args.batch, "sizes": {}}
    out_path = result_path(args.threads, native_bf16)
    if args.no_style and out_path.is_file():  # keep the style rows of an earlier run
        report["sizes"] = json.loads(out_path.read_text()).get("sizes", {})
    for size in [] if args.no_style else args.sizes:
        batch = torch.rand(args.batch, 3, size, size)
        steps = {"peer (pytorch/examples, fp32)": make_peer_step(style, batch),
                 "ours (cpu recipe)": make_our_style_step(style, batch, bf16=True),
                 "ours, float32": make_our_style_step(style, batch, bf16=False)}
        if args.variants:
            steps["ours, bf16 + channels-last"] = make_our_style_step(style, batch, True, channels_last=True)
            steps["ours, fp32 + channels-last"] = make_our_style_step(style, batch, False, channels_last=True)
        if args.compile:
            t0 = time.perf_counter()
            compiled = make_our_style_step(style, batch, True, compile_net=True)
            compiled()  # compile
            report.setdefault("compile_seconds", {})[str(size)] = time.perf_counter() - t0
            steps["ours, bf16 + torch.compile"] = compiled
        result = measure(steps, {k: args.batch for k in steps}, args.rounds)
        peer = result["peer (pytorch/examples, fp32)"]["images_per_second"]
        print(f"style step, batch {args.batch} at {size} px ({report['machine']}):")
        for name, r in result.items():
            print(f"  {name:32s} {r['images_per_second']:6.2f} images/s  ({r['seconds_per_step']:.3f} s/step, "
                  f"{r['images_per_second'] / peer:.2f}x peer)")
        report["sizes"][str(size)] = result
        save(report, out_path)
    if not args.no_sr:
        steps = {"ours x4 feature (cpu recipe)": make_our_sr_step("feature", 8, 96, "modern", True),
                 "ours x4 pixel (cpu recipe)": make_our_sr_step("pixel", 8, 96, "modern", True),
                 "paper x4 feature, fp32": make_our_sr_step("feature", 8, 96, "paper", False)}
        if args.variants:
            steps["ours x4 feature, channels-last"] = make_our_sr_step("feature", 8, 96, "modern", True, True)
            steps["ours x4 pixel, channels-last"] = make_our_sr_step("pixel", 8, 96, "modern", True, True)
        result = measure(steps, {k: 8 for k in steps}, args.rounds)
        print("SR step, batch 8 of 96 px HR patches:")
        for name, r in result.items():
            print(f"  {name:32s} {r['images_per_second']:6.2f} patches/s ({r['seconds_per_step']:.3f} s/step)")
        report["sr"] = result
    print(f"written: {save(report, out_path)}")


def result_path(threads: int, native_bf16: bool) -> Path:
    """Where this machine's results go: a CPU with native bf16 keeps its own file."""
    suffix = "_bf16" if native_bf16 else ""
    return RESULTS / f"train_throughput_{threads}t{suffix}.json"


def save(report: dict, out: Path) -> Path:
    """Write the report so far (a long run that is cut short still leaves its finished sizes)."""
    atomic_write(out, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=2)))
    return out


if __name__ == "__main__":
    main()
