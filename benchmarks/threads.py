"""Threads on a shared machine: ``python benchmarks/threads.py`` (about 4 minutes on 2 cores).

Measures the CPU recipe's style training step (``train_throughput.make_our_style_step``: the modern
network at 128 px, batch 4, bf16 autocast where the CPU has native bf16, else float32) and one
``stylize`` pass at 512 px (the inference path of ``python -m perceptual_utils stylize``), each with
1 and 2 torch threads, on a quiet machine and with one core held by a busy loop this script starts
and stops (as a notebook kernel, a second run or CI would). Every measurement runs in a fresh
process (``--worker``), so one thread pool never carries over to the next. It prints a table and
writes ``benchmarks/results/threads.json`` with the machine (CPU model, its bf16/AMX flags) and the
load average before each measurement: "quiet" means no busy loop of ours, not an idle machine.

The result chose :func:`perceptual_utils.config.default_threads` (README, "Threads").
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from perceptual_utils.config import available_cores, cpu_has_native_bf16
from perceptual_utils.model_io import atomic_write

RESULT = Path(__file__).resolve().parent / "results" / "threads.json"
TRAIN_SIZE, TRAIN_BATCH, STYLIZE_SIZE = 128, 4, 512


def machine() -> dict:
    """CPU model (lscpu), its bf16/AMX flags, cores and torch."""
    model = ""
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    flags: set[str] = set()
    try:
        flags = next((set(line.split(":", 1)[1].split()) for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), set())
    except OSError:
        pass
    return {"cpu": model, "cores": available_cores(), "avx512_bf16": "avx512_bf16" in flags,
            "amx_bf16": "amx_bf16" in flags, "avx2": "avx2" in flags, "native_bf16": cpu_has_native_bf16(),
            "torch": torch.__version__}


def worker(kind: str, threads: int, rounds: int) -> dict:
    """Median seconds of ``rounds`` timed calls after one warm-up, in this process."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if kind == "train":
        from train_throughput import make_our_style_step  # a script's folder is on sys.path

        step = make_our_style_step(torch.rand(3, 256, 256), torch.rand(TRAIN_BATCH, 3, TRAIN_SIZE, TRAIN_SIZE),
                                   bf16=cpu_has_native_bf16())
        images = TRAIN_BATCH
    else:
        from perceptual_utils.style.net import StyleTransferNet
        from perceptual_utils.style.stylize import prepare_model, stylize

        net = prepare_model(StyleTransferNet("modern").eval(), device="cpu")
        photo = torch.rand(3, STYLIZE_SIZE, STYLIZE_SIZE)

        def step() -> None:
            stylize(net, photo, tile=0)
        images = 1
    times = []
    for r in range(rounds + 1):
        t0 = time.perf_counter()
        step()
        if r:
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"seconds": median, "images_per_second": images / median, "all_seconds": times}


def run_worker(kind: str, threads: int, rounds: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run([sys.executable, __file__, "--worker", kind, "--threads", str(threads),
                           "--rounds", str(rounds)], capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode:
        raise RuntimeError(f"worker {kind} {threads}t failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=("train", "stylize"), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3, help="timed calls per measurement (median)")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.threads, args.rounds)))
        return
    rows = []
    for busy in (False, True):
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            if hog:
                time.sleep(1.0)  # let the scheduler place it
            for kind in ("train", "stylize"):
                for threads in (1, 2):
                    load = os.getloadavg()[0]
                    result = run_worker(kind, threads, args.rounds)
                    rows.append({"kind": kind, "threads": threads, "other_core_busy": busy, "load_before": load,
                                 **result})
                    print(f"{kind:8s} {threads} thread(s) {'busy' if busy else 'quiet'}: "
                          f"{result['images_per_second']:.3f} images/s (load {load:.2f})", flush=True)
        finally:
            if hog:
                hog.terminate()
                hog.wait()
    rate = {(r["kind"], r["threads"], r["other_core_busy"]): r["images_per_second"] for r in rows}
    print("\nimages/s     | 1 thread quiet | 2 threads quiet | 1 thread busy | 2 threads busy")
    for kind in ("train", "stylize"):
        print(f"{kind:12s} | " + " | ".join(f"{rate[(kind, t, b)]:.3f}" for b in (False, True) for t in (1, 2)))
    report = {"machine": machine(), "train": {"size": TRAIN_SIZE, "batch": TRAIN_BATCH,
                                              "precision": "bf16" if cpu_has_native_bf16() else "float32",
                                              "step": "train_throughput.make_our_style_step (cpu recipe)"},
              "stylize": {"size": STYLIZE_SIZE, "network": "StyleTransferNet('modern'), stylize(tile=0)"},
              "rounds": args.rounds, "load_average_at_end": os.getloadavg()[0], "rows": rows,
              "note": "busy = a `while True: pass` process started by this script; quiet = none of ours "
                      "(the machine is shared: see load_before)"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=2)))
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()
