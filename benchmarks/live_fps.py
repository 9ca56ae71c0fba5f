"""Which frame size keeps notebook 07's live panel live? ``python benchmarks/live_fps.py``.

Times the panel's per-frame work (:func:`perceptual_utils.teaching.live.frames_per_second`: the
multi-style network ``paintings`` on a mixed style, plus the JPEG encodings of the camera and the
output) at several long sides (4:3 frames), on 1 and 2 threads, and names the largest size at 15
frames/s or more. Camera capture is not included (a webcam delivers its frames in parallel).
The load average is recorded: on a shared machine other work slows every figure. So is the CPU time
per frame (all threads together): on one thread, ``1000 / cpu_ms`` is the rate the loop would reach
with the core to itself (an upper estimate: a busy machine also slows the CPU time through shared caches).
Results: ``benchmarks/results/live_fps.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from perceptual_utils.config import machine_description
from perceptual_utils.model_io import atomic_write
from perceptual_utils.shipped_models import resolve_model
from perceptual_utils.style.stylize import prepare_model
from perceptual_utils.teaching.live import frames_per_second

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_FPS = 15.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 80, 96, 128, 160, 192, 256])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--frames", type=int, default=15, help="timed frames per size (after one warm-up)")
    p.add_argument("--out", type=Path, default=RESULTS / "live_fps.json")
    args = p.parse_args()
    net = prepare_model(resolve_model("paintings"))
    mix = {"starry_night": 0.6, "wave": 0.4}
    report = {"machine": machine_description(max(args.threads)), "model": "paintings", "mix": mix,
              "aspect": "4:3", "target_fps": TARGET_FPS, "load_average_before": os.getloadavg()[0], "fps": {}}
    t0 = time.perf_counter()
    for threads in args.threads:
        torch.set_num_threads(threads)
        rates, cpu_ms = {}, {}
        for size in args.sizes:
            c0 = time.process_time()
            rates[size] = round(frames_per_second(net, size, frames=args.frames, mix=mix), 2)
            cpu_ms[size] = round(1000 * (time.process_time() - c0) / (args.frames + 1), 1)  # + the warm-up frame
            print(f"{threads} thread(s), {size}x{round(size * 0.75)} px: {rates[size]:.1f} frames/s, "
                  f"{cpu_ms[size]:.0f} ms of CPU per frame", flush=True)
        live = [s for s, r in rates.items() if r >= TARGET_FPS]
        report["fps"][str(threads)] = {"by_size": rates, "cpu_ms_per_frame": cpu_ms,
                                       "largest_live_size": max(live) if live else None}
    report["load_average_after"] = os.getloadavg()[0]
    report["seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write(args.out, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=2) + "\n"))
    for threads, row in report["fps"].items():
        print(f"{threads} thread(s): largest size at >= {TARGET_FPS:g} frames/s: {row['largest_live_size']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
