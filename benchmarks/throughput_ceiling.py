"""How fast could our style step be, at most, on this CPU? ``python benchmarks/throughput_ceiling.py``

The CPU-training issue asks for a style training step at least 3x the images/s of pytorch/examples'
``fast_neural_style`` step (re-created in ``train_throughput.py``) without changing the objective. This
script bounds what any implementation of our objective can reach here, from a count and one measured rate:

- **work**: floating-point operations of one training step of each recipe, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` over a real forward and backward (the backward counts only the
  gradients autograd computes: no weight gradients for the frozen VGG, no input gradient for the first layer);
- **rate**: the operations per second this CPU reaches on the VGG-16 convolutions themselves (forward to
  ``relu4_3`` and backward to the input, the bulk of both steps), in float32 and in bf16 autocast, on one
  thread, in the faster of the two memory layouts. Nothing in either step runs faster per operation than
  these large convolutions.

Two bounds, each the peer's measured seconds per step over a floor for ours:

- ``ceiling_speedup``: our step with every operation at the VGG convolutions' bf16 rate and no other cost;
- ``ceiling_with_network_as_measured``: our transformation network's forward and backward at the time they
  take here on their own (its small 9x9 and 32-128-channel convolutions run well below VGG's rate), the rest
  of the step at the VGG rate, with no other cost.

The peer keeps its real time, so both are generous. A goal above the second is out of reach for any
implementation of this objective and network on this CPU: it needs faster convolution kernels for the
network (faster hardware, for example AMX) or less work (a different network or objective).
Results: ``benchmarks/results/throughput_ceiling_<threads>t.json``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from perceptual_utils.config import autocast_dtype, machine_description
from perceptual_utils.model_io import atomic_write
from perceptual_utils.style.net import StyleTransferNet
from perceptual_utils.vgg.network import LossNetwork

import train_throughput as tt  # the step builders and the interleaved timer; a script's folder is on sys.path

RESULTS = Path(__file__).resolve().parent / "results"
LAYOUTS = ("contiguous", "channels-last")


def count_flops(fn) -> int:
    """Floating-point operations (2 per multiply-accumulate) of one call of ``fn``."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def make_vgg_pass(net: LossNetwork, batch: torch.Tensor, dtype: torch.dtype | None, channels_last: bool):
    """VGG-16 (``net``, tapping ``relu4_3``, in the memory layout ``channels_last`` says) forward and backward
    to the input (no weight gradients): the convolutions that dominate both recipes' steps, as the rate's
    workload."""
    x = batch.contiguous(memory_format=torch.channels_last) if channels_last else batch.clone()
    x.requires_grad_(True)

    def run() -> None:
        x.grad = None
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            out = net(x)["relu4_3"]
        out.float().sum().backward()

    return run


def make_net_pass(batch: torch.Tensor, dtype: torch.dtype | None):
    """Our transformation network alone, forward and backward (weight gradients and every input gradient but
    the first layer's), as in a training step: its share of the step's work and time."""
    net = StyleTransferNet("modern").train()

    def run() -> None:
        net.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            out = net(batch)
        out.float().mean().backward()

    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--goal", type=float, default=3.0, help="the issue's speed-up goal (default 3)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    bf16 = autocast_dtype(torch.device("cpu"))
    style = torch.rand(3, 256, 256)
    precisions = {"float32": None, **({"bf16": bf16} if bf16 else {})}
    # one VGG-16 per layout, loaded once; the conversion to channels-last happens in place
    vggs = {"contiguous": LossNetwork(["relu4_3"]),
            "channels-last": LossNetwork(["relu4_3"]).to(memory_format=torch.channels_last)}
    report = {"machine": machine_description(args.threads), "bf16": str(bf16), "batch": args.batch,
              "goal": args.goal, "sizes": {}}
    out = RESULTS / f"throughput_ceiling_{args.threads}t.json"
    for size in args.sizes:
        batch = torch.rand(args.batch, 3, size, size)
        peer = tt.make_peer_step(style, batch)
        ours = tt.make_our_style_step(style, batch, bf16=bf16 is not None)
        net_pass = make_net_pass(batch, bf16)
        steps = {"peer": peer, "ours": ours, "our network alone": net_pass}
        for precision, dtype in precisions.items():  # the faster layout gives each precision's rate
            for layout in LAYOUTS:
                steps[f"vgg {precision} {layout}"] = make_vgg_pass(vggs[layout], batch, dtype, layout == "channels-last")
        flops = {"peer": count_flops(peer), "ours": count_flops(ours)}
        vgg_flops, net_flops = count_flops(steps["vgg float32 contiguous"]), count_flops(net_pass)
        # interleaved medians, as train_throughput.py measures, so background load hits every workload alike
        seconds = {name: r["seconds_per_step"] for name, r in tt.measure(steps, dict.fromkeys(steps, 1), args.rounds).items()}
        rates = {p: vgg_flops / min(seconds[f"vgg {p} {layout}"] for layout in LAYOUTS) for p in precisions}
        rate32, rate16 = rates["float32"], rates.get("bf16", rates["float32"])
        best_ours = flops["ours"] / rate16
        # the network's convolutions at the rate they reach here, everything else at the VGG rate, free otherwise
        with_net = seconds["our network alone"] + (flops["ours"] - net_flops) / rate16
        row = {"flops_per_step": flops, "network_flops": net_flops, "seconds_per_step": seconds,
               "rate_gflops": {"float32": rate32 / 1e9, "bf16": rate16 / 1e9,
                               "our network": net_flops / seconds["our network alone"] / 1e9},
               "measured_speedup": seconds["peer"] / seconds["ours"],
               "ceiling_speedup": seconds["peer"] / best_ours,
               "ceiling_with_network_as_measured": seconds["peer"] / with_net}
        report["sizes"][str(size)] = row
        print(f"batch {args.batch} at {size} px ({report['machine']}):")
        print(f"  work per step: peer {flops['peer'] / 1e9:.1f} GFLOP, ours {flops['ours'] / 1e9:.1f} GFLOP "
              f"({flops['peer'] / flops['ours']:.2f}x less)")
        print(f"  VGG-16 convolutions here: float32 {rate32 / 1e9:.1f} GFLOP/s, bf16 {rate16 / 1e9:.1f} GFLOP/s "
              f"({rate16 / rate32:.2f}x)")
        print(f"  step: peer {seconds['peer']:.3f} s, ours {seconds['ours']:.3f} s: {row['measured_speedup']:.2f}x "
              f"measured")
        print(f"  ours with every operation at the VGG bf16 rate and no other cost: {best_ours:.3f} s, "
              f"{row['ceiling_speedup']:.2f}x")
        print(f"  our transformation network alone: {net_flops / 1e9:.1f} GFLOP ({net_flops / flops['ours']:.0%} of "
              f"the step) in {seconds['our network alone']:.3f} s ({net_flops / seconds['our network alone'] / 1e9:.1f} "
              f"GFLOP/s); with it as measured and the rest at the VGG rate, free of any other cost: "
              f"{with_net:.3f} s, {row['ceiling_with_network_as_measured']:.2f}x")
        reach = row["ceiling_with_network_as_measured"] >= args.goal
        print(f"  goal {args.goal:g}x: {'within reach' if reach else 'out of reach for this network on this CPU'}")
        atomic_write(out, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=2)))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
