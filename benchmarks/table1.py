"""The paper's Table 1 on this machine: ``python benchmarks/table1.py [bench options]``.

A thin wrapper around ``python -m perceptual_utils bench`` (see perceptual_utils/style/timing.py);
by default it writes ``benchmarks/results/table1_<device>.json``.
"""
from __future__ import annotations

import sys
from pathlib import Path

from perceptual_utils.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--json" not in argv:
        import torch

        device = "cuda" if torch.cuda.is_available() and "cpu" not in argv else "cpu"
        argv += ["--json", str(Path(__file__).resolve().parent / "results" / f"table1_{device}.json")]
    raise SystemExit(main(["bench", *argv]))
