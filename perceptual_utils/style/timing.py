"""The paper's Table 1 on the current device: optimisation (Gatys et al.) vs the feed-forward network.

Everything is measured in one run with the same objective: Gatys' method
(:func:`~perceptual_utils.optimization.gatys.gatys_style_transfer`, L-BFGS on the
:class:`~perceptual_utils.losses.PerceptualLoss` of the feed-forward network) for 100, 300 and
500 iterations, and one forward pass of the paper's :class:`StyleTransferNet` through the fast
inference path (:func:`~perceptual_utils.style.stylize.prepare_model`), at 256, 512 and 1024 px.
Reported times are medians over repeated runs after warm-up; the speed-up column divides the
500-iteration Gatys time by the network's time. Training throughput (images/s) is measured too.

Slow devices: 500 Gatys iterations at 1024 px take hours on a laptop CPU. With
``measure_iterations=K`` each Gatys row is instead measured over ``K`` iterations and
extrapolated linearly (``t(n) = setup + n * per_iteration``; exact for L-BFGS without line
search, which costs one loss-network pass per iteration); such cells are marked
"extrapolated" in the table and the JSON. Network weights do not change the timing, so an
untrained network is used unless a model file is given.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..cli_options import add_command, add_device_option, add_progress_option, add_threads_option
from ..config import data_root, resolve_device
from ..images import center_crop, load_image, resize_short_side
from ..inference import choose_path
from ..losses import PerceptualLoss
from ..model_io import atomic_write
from ..optimization.gatys import gatys_style_transfer
from ..vgg.cache import get_loss_network
from ..vgg.network import STYLE_LAYERS
from .net import StyleTransferNet
from .stylize import prepare_model
from ..validation import InvalidArgument, check_device, check_int, check_same_file, check_writable_folder
from .objective import StyleTransferLoss

PAPER_ITERATIONS = (100, 300, 500)
PAPER_SIZES = (256, 512, 1024)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeats: int = 5, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls (CUDA-synchronised)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def _square(path: Path | None, size: int, seed: int) -> torch.Tensor:
    """A ``(1, 3, size, size)`` test image: a demo photo if available (timing does not depend on it)."""
    if path is not None and path.is_file():
        return center_crop(resize_short_side(load_image(path), size), size)[None]
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _gatys_run(content: torch.Tensor, style: torch.Tensor, iterations: int, device: torch.device,
               marks: Sequence[int] = ()) -> tuple[float, dict[int, float], Any]:
    """One full Gatys optimisation with :func:`gatys_style_transfer`'s defaults (the same
    PerceptualLoss objective the network is trained on), timed from the call: returns the total
    seconds, the seconds until the image after each of ``marks`` updates was available, and the result."""
    wanted, at = set(marks), {}
    net = get_loss_network(["relu2_2", *STYLE_LAYERS], device=device)
    _sync(device)
    t0 = time.perf_counter()

    def callback(k: int, image: torch.Tensor, losses: dict[str, float]) -> None:
        if k in wanted:
            _sync(device)
            at[k] = time.perf_counter() - t0

    result = gatys_style_transfer(content, style, iterations=iterations, callback=callback, progress=False,
                                  loss_network=net)
    _sync(device)
    return time.perf_counter() - t0, at, result


def time_gatys(content: torch.Tensor, style: torch.Tensor, iterations: Sequence[int], device: torch.device,
               repeats: int = 1, measure_iterations: int | None = None) -> dict[int, dict[str, Any]]:
    """Seconds for Gatys at each iteration count, including the setup (target features).

    Measured: one run of ``max(iterations)`` per repeat, read off at each count (L-BFGS without
    line search costs one loss-network pass per iteration, so a 100-iteration run is the first
    100 iterations of a 500-iteration run). Extrapolated (``measure_iterations=K``): ``K``
    iterations are run and ``t(n) = setup + n * seconds_per_iteration``.
    """
    _gatys_run(content, style, 2, device)  # warm-up: allocations, cuDNN autotuning, weights in cache
    if measure_iterations:
        k = int(measure_iterations)
        runs = [_gatys_run(content, style, k, device) for _ in range(repeats)]
        per_iter = statistics.median(r.seconds_per_iteration for _, _, r in runs)
        setup = statistics.median(total - r.optimize_seconds for total, _, r in runs)
        return {n: {"seconds": setup + n * per_iter, "extrapolated": True, "measured_iterations": k,
                    "seconds_per_iteration": per_iter, "setup_seconds": setup} for n in iterations}
    runs = [_gatys_run(content, style, max(iterations), device, marks=iterations) for _ in range(repeats)]
    return {n: {"seconds": statistics.median(at[n] for _, at, _ in runs), "extrapolated": False,
                "runs": [at[n] for _, at, _ in runs]} for n in iterations}


def time_feedforward(net: torch.nn.Module, size: int, device: torch.device, repeats: int = 5,
                     warmup: int = 2) -> dict[str, Any]:
    """Median seconds of one forward pass at ``size x size`` (input already on the device) on the
    fast inference path (:func:`perceptual_utils.inference.choose_path`: its precision, layout
    and backend; ``net`` from :func:`~perceptual_utils.style.stylize.prepare_model` keeps its path)."""
    fast = choose_path(net, device=device)
    param = next(fast.net.parameters())
    x = torch.rand(1, 3, size, size, device=device, dtype=param.dtype)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)

    def fwd() -> None:
        fast(x)

    ts = timed(fwd, device, repeats, warmup)
    return {"seconds": statistics.median(ts), "runs": ts}


def training_throughput(style: torch.Tensor, device: torch.device, size: int = 256, batch_size: int = 4,
                        steps: int = 3, warmup: int = 1) -> dict[str, Any]:
    """Images/s of full training steps (network + VGG loss forward/backward + Adam), with the same
    settings as :func:`~perceptual_utils.style.training.train_style` (AMP and channels-last on CUDA)."""
    perceptual = PerceptualLoss(style_layers=STYLE_LAYERS).to(device)
    perceptual.set_style(style.to(device))
    loss_fn = StyleTransferLoss(perceptual)
    net = StyleTransferNet("paper").to(device).train()
    cuda = device.type == "cuda"
    if cuda:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    amp_dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16
    batch = torch.rand(batch_size, 3, size, size, device=device)
    if cuda:
        batch = batch.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=cuda):
            total = loss_fn(net, batch)["total"]
        total.backward()
        opt.step()

    ts = timed(step, device, steps, warmup)
    per_step = statistics.median(ts)
    return {"images_per_second": batch_size / per_step, "seconds_per_step": per_step, "size": size,
            "batch_size": batch_size, "steps_timed": steps, "mixed_precision": cuda}


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def run_benchmark(sizes: Sequence[int] = PAPER_SIZES, iterations: Sequence[int] = PAPER_ITERATIONS,
                  device: str | torch.device | None = None, repeats: int = 5, gatys_repeats: int = 1,
                  measure_iterations: int | None = None, model: str | os.PathLike | None = None,
                  train: bool = True, train_size: int = 256, train_batch: int = 4, train_steps: int = 3,
                  progress: bool = True) -> dict[str, Any]:
    """Measure Table 1 (and training throughput) on ``device``; returns a JSON-able dict.

    Args:
        sizes, iterations: the table's rows and Gatys columns (paper: 256/512/1024 px, 100/300/500).
        repeats: timed forward passes per size (median reported) after two warm-up passes.
        gatys_repeats: timed Gatys runs per cell (median).
        measure_iterations: extrapolate Gatys from ``K`` measured iterations (slow devices).
        model: a trained style model file (default: an untrained paper network; same speed).
        train: also measure training images/s (``train_size`` crops, batch ``train_batch``).
    """
    dev = resolve_device(device)
    iterations = sorted(set(int(n) for n in iterations))
    root = data_root()
    content_path, style_path = root / "content" / "chicago.jpg", root / "styles" / "starry_night_crop.jpg"
    net = prepare_model(model if model is not None else StyleTransferNet("paper").eval(), device=dev)
    rows = []
    bar = tqdm(total=len(sizes), desc="Table 1", unit="size", disable=not progress)
    for size in sizes:
        content, style = _square(content_path, size, 0)[0], _square(style_path, size, 1)[0]
        ff = time_feedforward(net, size, dev, repeats=repeats)
        gatys = time_gatys(content, style, iterations, dev, gatys_repeats, measure_iterations)
        ref = max(iterations)
        rows.append({"size": size, "gatys": {str(n): v for n, v in gatys.items()}, "feedforward": ff,
                     "speedup_vs": ref, "speedup": gatys[ref]["seconds"] / ff["seconds"]})
        bar.update(1)
    bar.close()
    result: dict[str, Any] = {
        "device": device_description(dev), "device_type": dev.type, "torch": torch.__version__,
        "feedforward_dtype": str(next(net.parameters()).dtype).replace("torch.", ""),
        "feedforward_path": "inference mode, BN folded, " + choose_path(net, device=dev).path.describe(),
        "repeats": repeats, "gatys_repeats": gatys_repeats, "measure_iterations": measure_iterations,
        "rows": rows,
    }
    if train:
        result["training"] = training_throughput(_square(style_path, 256, 1)[0], dev, train_size, train_batch,
                                                 train_steps)
    return result


#: Johnson et al.'s Table 1 (GTX Titan X, Torch): seconds for Gatys at 100/300/500 L-BFGS
#: iterations and for one pass of their network, per image size.
PAPER_TABLE1: dict[int, dict[str, float]] = {
    256: {"100": 3.17, "300": 9.52, "500": 15.86, "network": 0.015},
    512: {"100": 10.97, "300": 32.91, "500": 54.85, "network": 0.05},
    1024: {"100": 42.89, "300": 128.66, "500": 214.44, "network": 0.21},
}


def format_table(result: dict[str, Any], paper: bool = True) -> str:
    """The Table 1 layout: one row per size, Gatys columns, the network, the speed-up; with
    ``paper`` the paper's row (GTX Titan X) under each of ours."""
    iters = list(result["rows"][0]["gatys"]) if result["rows"] else []
    head = ["Image size"] + [f"Gatys {n} it" for n in iters] + ["Ours (1 pass)", f"Speed-up vs {iters[-1]} it"
                                                                  if iters else "Speed-up"]
    lines = [" | ".join(head), " | ".join("-" * len(h) for h in head)]
    extrapolated = False
    for row in result["rows"]:
        cells = [f"{row['size']} px"]
        for n in iters:
            g = row["gatys"][n]
            extrapolated |= g["extrapolated"]
            cells.append(f"{g['seconds']:.2f} s" + ("*" if g["extrapolated"] else ""))
        cells += [f"{row['feedforward']['seconds'] * 1000:.1f} ms", f"{row['speedup']:.0f}x"]
        lines.append(" | ".join(cells))
        ref = PAPER_TABLE1.get(int(row["size"])) if paper else None
        if ref and all(n in ref for n in iters):
            lines.append(" | ".join([f"  paper {row['size']} px"] + [f"{ref[n]:.2f} s" for n in iters]
                                    + [f"{ref['network'] * 1000:.0f} ms", f"{ref[iters[-1]] / ref['network']:.0f}x"]))
    lines.append(f"device: {result['device']}; network: {result['feedforward_path']}; "
                 f"medians of {result['repeats']} passes after warm-up")
    if extrapolated:
        lines.append(f"* extrapolated: setup + n x (seconds per iteration), measured over "
                     f"{result['measure_iterations']} L-BFGS iterations (one loss-network pass each)")
    if "training" in result:
        t = result["training"]
        lines.append(f"training throughput: {t['images_per_second']:.2f} images/s "
                     f"({t['size']} px crops, batch {t['batch_size']}, median of {t['steps_timed']} steps)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line

def _check_cli_args(args: argparse.Namespace) -> None:
    """Every count and size of ``bench`` before any work: ``--iterations 0`` or ``--train-batch 0``
    would otherwise run and print a table of nothing (or divide by zero)."""
    for option in ("iterations", "sizes"):
        for value in getattr(args, option):
            check_int(f"--{option}", value, minimum=1 if option == "iterations" else 16)
    for option, minimum in (("repeats", 1), ("gatys_repeats", 1), ("train_size", 16), ("train_batch", 1),
                            ("train_steps", 1), ("measure_iterations", 0)):
        check_int("--" + option.replace("_", "-"), getattr(args, option), minimum=minimum, optional=True)
    check_device(args.device)
    if args.json:
        if Path(args.json).is_dir():
            raise InvalidArgument(f"--json {args.json}: is an existing folder; give a file name such as "
                                  f"{Path(args.json) / 'bench.json'}")
        root = data_root()  # the photo and painting the benchmark reads, and the model
        for source in (args.model, root / "content" / "chicago.jpg", root / "styles" / "starry_night_crop.jpg"):
            if source:
                check_same_file(source, args.json)
        check_writable_folder(Path(args.json).parent, "--json")


def _run_cli(args: argparse.Namespace) -> int:
    """Time Gatys' optimisation (same objective) at 100/300/500 iterations against one forward pass of
    the style network at 256/512/1024 px, plus training images/s. On CPU, Gatys is extrapolated from a
    few iterations unless --measure-iterations 0."""
    _check_cli_args(args)
    dev = resolve_device(args.device)
    measure = args.measure_iterations
    if measure is None and dev.type == "cpu":
        measure = 3  # hours otherwise; say so in the table
    result = run_benchmark(sizes=args.sizes, iterations=args.iterations, device=dev, repeats=args.repeats,
                           gatys_repeats=args.gatys_repeats, measure_iterations=measure or None,
                           model=args.model, train=not args.no_train, train_size=args.train_size,
                           train_batch=args.train_batch, train_steps=args.train_steps,
                           progress=args.progress)
    print(format_table(result))
    if args.json:  # atomically: a full disk keeps the previous JSON whole
        text = json.dumps(result, indent=2)
        atomic_write(args.json, lambda tmp: Path(tmp).write_text(text))
        print(f"JSON: {args.json}")
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench`` to the command line."""
    p = add_command(subparsers, "bench", _run_cli,
                    help="the paper's Table 1 (Gatys vs feed-forward speed) on this device")
    p.add_argument("--sizes", type=int, nargs="+", default=list(PAPER_SIZES))
    p.add_argument("--iterations", type=int, nargs="+", default=list(PAPER_ITERATIONS))
    p.add_argument("--measure-iterations", type=int, default=None,
                   help="extrapolate Gatys from K measured iterations (default: 3 on CPU, full runs on GPU; "
                        "0 = always run the full iteration counts)")
    p.add_argument("--repeats", type=int, default=5, help="timed forward passes per size (median)")
    p.add_argument("--gatys-repeats", type=int, default=1, help="timed Gatys runs per cell (median)")
    p.add_argument("--model", help="a trained style model file (default: untrained paper network, same speed)")
    p.add_argument("--no-train", action="store_true", help="skip the training throughput measurement")
    p.add_argument("--train-size", type=int, default=256)
    p.add_argument("--train-batch", type=int, default=4)
    p.add_argument("--train-steps", type=int, default=3)
    add_device_option(p)
    add_threads_option(p)
    p.add_argument("--json", help="write the results here as JSON")
    add_progress_option(p)
