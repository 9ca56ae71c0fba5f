"""Inference speed at this CPU's limit: ``python benchmarks/inference.py [--threads 1]``.

Images/s of one forward pass (batch 1) at 256, 512 and 1024 px for

- **paper** and **modern** style networks (``StyleTransferNet``; the shipped style models are all
  ``modern``, so that row loads ``models/starry_night.safetensors`` when present), each in float32
  eager (``net.eval()(x)``) and on the **fast path** (:func:`perceptual_utils.inference.choose_path`,
  what ``stylize`` uses);
- the **peer**: pytorch/examples' ``TransformerNet`` in float32 eager, re-created as in
  ``train_throughput.py``;
- every other backend tried on the modern network: **ONNX Runtime** (the exported graph,
  ``perceptual_utils.export``, one intra-op thread per ``--threads``) and, with ``--compile``,
  ``torch.compile`` (inductor; its compile time is reported);
- the **ceiling**: the network's FLOPs (``torch.utils.flop_counter.FlopCounterMode``, 2 per
  multiply-add) at the float32 convolution rate this CPU reaches on VGG-16's convolutions
  (forward to ``relu4_3`` at 256 px, the faster of the two memory layouts; timed in the same
  interleaved rounds as the networks, so a loaded machine lowers both alike), as
  ``throughput_ceiling.py`` measures it for training.

Variants are timed interleaved (round-robin, one call each per round) after a warm-up call, and
medians are reported, so background load hits all of them alike; the load average before and after
is recorded. Exactness: mean and max absolute difference of the fast path (and each backend) to the
float32 eager output, in /255, on a photo from the data root (random pixels without one). A
``torch.profiler`` breakdown of the fast path at the smallest size is saved too. Results:
``benchmarks/results/inference_<threads>t.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from perceptual_utils.config import cpu_has_native_bf16, data_root, machine_description
from perceptual_utils.images import center_crop, load_image, resize_short_side
from perceptual_utils.inference import choose_path
from perceptual_utils.model_io import atomic_write
from perceptual_utils.style.net import StyleTransferNet
from perceptual_utils.vgg.network import LossNetwork

import train_throughput as tt  # the peer's TransformerNet; a script's folder is on sys.path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent


def cpu_info() -> dict:
    """lscpu's model name and whether the CPU has AVX-512, AVX512-BF16 and AMX."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        text = ""
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Model name")),
                platform.processor())
    flags = set()
    try:
        flags = {f for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")
                 for f in line.split(":", 1)[1].split()}
    except OSError:
        pass
    return {"model_name": name, "avx2": "avx2" in flags, "avx512f": "avx512f" in flags,
            "avx512_bf16": "avx512_bf16" in flags, "amx_bf16": "amx_bf16" in flags,
            "native_bf16": cpu_has_native_bf16(), "cores": os.cpu_count()}


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        fn()
    return counter.get_total_flops()


def vgg_calls() -> tuple[dict, int]:
    """The rate's workload: VGG-16's convolutions (forward to relu4_3, 1 x 3 x 256 x 256) in both
    layouts, as calls to interleave with the networks (so the rate sees the same background load),
    and its FLOPs."""
    x = torch.rand(1, 3, 256, 256)
    nets = {"contiguous": (LossNetwork(["relu4_3"]), x),
            "channels-last": (LossNetwork(["relu4_3"]).to(memory_format=torch.channels_last),
                              x.contiguous(memory_format=torch.channels_last))}
    flops = count_flops(lambda: nets["contiguous"][0](x))
    return {f"vgg16 convs {k}": (lambda n=n, t=t: n(t)) for k, (n, t) in nets.items()}, flops


def interleaved(calls: dict, rounds: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call, round-robin over ``calls`` (``train_throughput.round_robin``) in inference mode."""
    with torch.inference_mode():
        times = tt.round_robin(calls, rounds, warmup)
    return {k: statistics.median(v) for k, v in times.items()}


def photo(size: int) -> torch.Tensor:
    path = data_root() / "content" / "chicago.jpg"
    if path.is_file():
        return center_crop(resize_short_side(load_image(path), size), size)[None]
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))


def networks() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    paper = StyleTransferNet("paper")
    with torch.no_grad():  # trained-like batch-norm statistics, so folding them is really exercised
        for m in paper.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
    shipped = ROOT / "models" / "starry_night.safetensors"
    if shipped.is_file():
        from perceptual_utils.model_io import load_model

        modern = load_model(shipped, kind="style_transfer")
    else:
        modern = StyleTransferNet("modern")
    return {"paper": paper.eval(), "modern": modern.eval(), "peer": tt.PeerTransformerNet().eval()}


def difference(out: torch.Tensor, ref: torch.Tensor) -> dict:
    d = (torch.as_tensor(out).float().clamp(0, 1) - ref.float().clamp(0, 1)).abs() * 255
    return {"mean_per_255": float(d.mean()), "max_per_255": float(d.max())}


def ort_session(net: torch.nn.Module, threads: int, folder: str):
    import onnxruntime as ort

    from perceptual_utils.export import export_onnx

    path = export_onnx(net, Path(folder) / "modern.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"image": x.numpy()})[0])


def profile_breakdown(fn, top: int = 12) -> list[dict]:
    """Self CPU time per operator of one call of ``fn``, largest first."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in rows) or 1
    return [{"op": e.key, "self_ms": e.self_cpu_time_total / 1e3, "share": e.self_cpu_time_total / total,
             "calls": e.count} for e in rows[:top]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-ort", action="store_true", help="skip ONNX Runtime")
    p.add_argument("--compile", action="store_true", help="also torch.compile (inductor; slow to compile)")
    p.add_argument("--compile-sizes", type=int, nargs="+", default=[256], help="sizes to compile for")
    p.add_argument("--goal", type=float, default=3.0, help="speed-up over the peer asked for (default 3)")
    p.add_argument("--ceiling-share", type=float, default=0.7, help="share of the ceiling asked for")
    p.add_argument("--output", help="JSON file (default: benchmarks/results/inference_<threads>t.json)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out_path = Path(args.output) if args.output else RESULTS / f"inference_{args.threads}t.json"
    report = {"machine": machine_description(args.threads), "cpu": cpu_info(), "threads": args.threads,
              "rounds": args.rounds, "load_average_before": os.getloadavg(), "goal_vs_peer": args.goal,
              "goal_ceiling_share": args.ceiling_share, "sizes": {}}
    nets = networks()
    fast = {k: choose_path(nets[k], device="cpu") for k in ("paper", "modern")}
    report["fast_path"] = fast["modern"].path.describe()
    vgg, vgg_flops = vgg_calls()
    print(f"{report['cpu']['model_name']}, {args.threads} thread(s); fast path: {report['fast_path']}")
    tmp = tempfile.mkdtemp(prefix="inference-bench-")
    ort_run = None if args.no_ort else ort_session(nets["modern"], args.threads, tmp)
    for size in args.sizes:
        x = photo(size)
        calls = {"peer float32 eager": lambda: nets["peer"](x)}
        for k in ("paper", "modern"):
            calls[f"{k} float32 eager"] = lambda k=k: nets[k](x)
            calls[f"{k} fast path"] = lambda k=k: fast[k](x)
        if ort_run is not None:
            calls["modern onnxruntime"] = lambda: ort_run(x)
        row: dict = {"compile_seconds": {}}
        if args.compile and size in args.compile_sizes:
            compiled = torch.compile(fast["modern"].net, dynamic=False)
            t0 = time.perf_counter()
            with torch.inference_mode():
                compiled(x)
            row["compile_seconds"]["modern torch.compile"] = time.perf_counter() - t0
            calls["modern torch.compile"] = lambda: compiled(x)
        with torch.inference_mode():
            refs = {k: nets[k](x) for k in ("paper", "modern")}
            row["difference_to_float32_eager"] = {
                name: difference(fn(), refs[name.split()[0]]) for name, fn in calls.items()
                if name.split()[0] in refs and "eager" not in name}
        row["seconds"] = secs = interleaved(calls | vgg, args.rounds)
        rate = {"gflops_per_s": vgg_flops / min(secs.pop(k) for k in vgg) / 1e9, "gflop": vgg_flops / 1e9}
        row["conv_rate"] = rate
        row["images_per_second"] = ips = {k: 1 / s for k, s in secs.items()}
        flops = {k: count_flops(lambda k=k: nets[k](x)) for k in ("paper", "modern", "peer")}
        flops.update({f"{k} fast path": count_flops(lambda k=k: fast[k](x)) for k in ("paper", "modern")})
        row["gflop"] = {k: v / 1e9 for k, v in flops.items()}
        ceiling = {k: rate["gflops_per_s"] * 1e9 / flops[k] for k in ("paper", "modern", "peer")}
        row["ceiling_images_per_second"] = ceiling
        peer = ips["peer float32 eager"]
        row["vs_peer"] = {k: v / peer for k, v in ips.items()}
        row["share_of_ceiling"] = {k: v / ceiling[k.split()[0]] for k, v in ips.items()}
        best = max((k for k in ips if k.startswith("modern")), key=ips.get)
        row["modern_best"] = best
        row["targets_met"] = {"vs_peer": row["vs_peer"]["modern fast path"] >= args.goal,
                              "ceiling": row["share_of_ceiling"]["modern fast path"] >= args.ceiling_share}
        report["sizes"][str(size)] = row
        print(f"\n{size} px ({args.threads} thread(s)), ceiling = network GFLOP / {rate['gflops_per_s']:.1f} GFLOP/s:")
        print(f"  {'variant':26s} {'ms':>9s} {'img/s':>8s} {'x peer':>7s} {'ceiling':>8s}  diff /255 (mean, max)")
        for k in calls:
            d = row["difference_to_float32_eager"].get(k)
            dt = f"  {d['mean_per_255']:.4f}, {d['max_per_255']:.4f}" if d else ""
            print(f"  {k:26s} {secs[k] * 1e3:9.1f} {ips[k]:8.3f} {row['vs_peer'][k]:7.2f} "
                  f"{row['share_of_ceiling'][k]:8.0%}{dt}")
        for k in ("paper", "modern", "peer"):
            print(f"  ceiling {k:18s} {1e3 / ceiling[k]:9.1f} {ceiling[k]:8.3f}   ({flops[k] / 1e9:.1f} GFLOP)")
        atomic_write(out_path, lambda t: Path(t).write_text(json.dumps(report, indent=2)))
    small = photo(min(args.sizes))
    report["profile_fast_path"] = {"size": min(args.sizes), "ops": profile_breakdown(lambda: fast["modern"](small))}
    report["profile_eager"] = {"size": min(args.sizes), "ops": profile_breakdown(lambda: nets["modern"](small))}
    # What bf16 autocast changes (its exactness; emulated, so not timed, on CPUs without native bf16).
    f32 = choose_path(nets["modern"], device="cpu", amp=False)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        bf16_out = f32.net(small).float()
    with torch.inference_mode():
        report["bf16_autocast_difference_at_smallest_size"] = difference(bf16_out, nets["modern"](small))
    report["load_average_after"] = os.getloadavg()
    atomic_write(out_path, lambda t: Path(t).write_text(json.dumps(report, indent=2)))
    print(f"\nload average before {report['load_average_before']}, after {report['load_average_after']}")
    print(f"written: {out_path}")


if __name__ == "__main__":
    main()
