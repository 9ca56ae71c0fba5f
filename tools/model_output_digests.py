"""Digest of every shipped model's output on a fixed input: a refactor must leave them bit-identical.

Run before and after a change on the same machine (floating-point results differ between CPU kinds,
so the digests are a same-machine comparison, not a test fixture)::

    OMP_NUM_THREADS=1 python tools/model_output_digests.py --json before.json
    OMP_NUM_THREADS=1 python tools/model_output_digests.py --compare before.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys

import torch

import perceptual_utils as pu
from perceptual_utils.shipped_models import list_models


def output_digests(size: int = 64) -> dict[str, str]:
    """sha256 of each shipped model's float32 output (style nets: every style slot) on a seeded input."""
    torch.manual_seed(0)
    image = torch.rand(1, 3, size, size)
    digests: dict[str, str] = {}
    for shipped in list_models():
        model = pu.load_model(shipped.path).eval()
        with torch.no_grad():
            if shipped.kind == "super_resolution":
                out = model(image[..., : size // 2, : size // 2])
                digests[shipped.name] = hashlib.sha256(out.contiguous().numpy().tobytes()).hexdigest()
                continue
            count = getattr(model, "num_styles", 1)
            parts = []
            for index in range(count):
                out = model(image, index) if count > 1 else model(image)
                parts.append(out.contiguous().numpy().tobytes())
            digests[shipped.name] = hashlib.sha256(b"".join(parts)).hexdigest()
    return digests


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else the platform's machine type."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the digests here")
    parser.add_argument("--compare", help="compare with digests written earlier; exit 1 on any difference")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    digests = output_digests()
    record = {"machine": cpu_model(), "torch": torch.__version__,
              "digests": digests}
    print(json.dumps(record, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=2)
    if args.compare:
        with open(args.compare) as f:
            before = json.load(f)["digests"]
        changed = sorted(k for k in before.keys() | digests.keys() if before.get(k) != digests.get(k))
        print("identical" if not changed else f"changed: {', '.join(changed)}")
        return 1 if changed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
