"""What the model cards quote from the benchmark scripts' results in ``benchmarks/results/``: each
model's ``cpu_recipe`` report, the style gap, the shift-consistency run and the flat-bright area, and
the one-line summaries stored in the model files from them.

Nothing on a card is typed by hand: every number comes from these files (the model-shipping issue).
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

from ..config import PROJECT_ROOT
from ..model_io import stored_digest


RESULTS = PROJECT_ROOT / "benchmarks" / "results" / "cpu_recipe"  # benchmarks/cpu_recipe.py, one file a model


#: Gatys-equivalent iterations at 256 px from white noise, the paper's protocol (Fig. 5: 50-100; Gatys
#: et al. start from noise, and the pixels are clipped at every L-BFGS iteration).
STYLE_TARGET = 50
GAP = PROJECT_ROOT / "benchmarks" / "results" / "style_gap.json"  # written by benchmarks/style_gap.py
SHIFT = PROJECT_ROOT / "benchmarks" / "results" / "shift_consistency.json"  # benchmarks/shift_consistency.py
BLOBS = PROJECT_ROOT / "benchmarks" / "results" / "blob_area.json"  # benchmarks/blob_area.py
MULTI_STYLE_TOLERANCE = 0.20  # each painting of a multi-style network within 20% of its single-style model


def read_report(name: str) -> dict | None:
    """``benchmarks/cpu_recipe.py``'s measurements of the model ``name``, if it was measured."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


@functools.cache
def _style_gaps() -> dict:
    return json.loads(GAP.read_text())["styles"] if GAP.is_file() else {}


def style_gap(label: str) -> dict | None:
    """``benchmarks/style_gap.py``'s numbers for one style (``model`` or ``model/painting``), if measured."""
    return _style_gaps().get(label)


@functools.cache
def _blob_measurements(results: Path) -> dict:
    return json.loads(results.read_text())["models"] if results.is_file() else {}


def blob_areas(name: str, path: Path) -> dict | None:
    """``benchmarks/blob_area.py``'s ``{style: {"mean", "per_photo"}}`` for a shipped model, if it was
    measured on these very weights (a re-shipped model's old numbers are left off its card)."""
    entry = dict(_blob_measurements(BLOBS).get(name, {}))
    if entry.pop("tensor_sha256", None) != stored_digest(path):
        return None
    return entry


def blob_sentence(area: dict) -> str:
    return (f"{100 * area['mean']:.2f}% of the outputs (per photo "
            f"{' / '.join(f'{100 * a:.2f}' for a in area['per_photo'])})")


def gap_sentence(gap: dict) -> str:
    """How much lower the network's objective would have to be to match 30 and 50 Gatys iterations."""
    m = gap["mean"]
    return (f"network {m['network']:.2f}; Gatys from the photo reaches {m['gatys_10']:.2f} after 10 iterations, "
            f"{m['gatys_30']:.2f} after 30, {m['gatys_50']:.2f} after 50 and {m['gatys_100']:.2f} after 100, so "
            f"matching 30 needs a {100 * gap['reduction_needed']['30']:.0f}% lower objective and {STYLE_TARGET} "
            f"a {100 * gap['reduction_needed']['50']:.0f}% lower one")


def needs_shift_note(training: dict, summary: dict) -> bool:
    """A checkerboard above the issue's 1.2x bar, from a run without the shift-consistency term."""
    return not training.get("shift_weight") and summary["checkerboard_ratio_mean"] > 1.2


@functools.cache
def shift_note() -> str:
    """What the shift-consistency term did, from ``benchmarks/shift_consistency.py``'s results
    (docs/artefacts.md, "Shift consistency"); empty if that benchmark has not been run."""
    if not SHIFT.is_file():
        return ""
    row = json.loads(SHIFT.read_text())["models"].get("starry_night_shift_consistency")
    if not row:
        return ""
    return (f"; trained without the shift-consistency term (`--shift-weight 1000`): Starry Night with it, "
            f"{row['train_minutes']:.0f} minutes on one core, measures {row['checkerboard_ratio']:.1f}x "
            f"(`teaching/starry_night_shift_consistency`, `benchmarks/results/shift_consistency.json`)")


def single_style_reports() -> dict[str, tuple[str, dict]]:
    """``{style image stem: (model name, report)}`` of the measured single-style models."""
    found = {}
    for path in sorted(RESULTS.glob("*.json")):
        report = json.loads(path.read_text())
        style = report.get("training", {}).get("style")
        if report.get("kind") == "style_transfer" and isinstance(style, str) and "summary" in report:
            found[Path(style).stem] = (path.stem, report)
    return found


def style_summary(report: dict) -> str:
    """The one-line summary of a style model's ``cpu_recipe`` report."""
    if "styles" in report:  # multi-style: the medians per painting
        parts = [f"{name} {r['summary']['gatys_iterations_noise']:g}/{r['summary']['gatys_iterations_content']:g}"
                 for name, r in report["styles"].items()]
        return (f"{len(parts)} styles in one network; Gatys-equivalent iterations from noise (the paper's "
                "protocol) / from the photo: " + ", ".join(parts))
    s = report["summary"]
    return (f"Gatys-equivalent iterations {s['gatys_iterations_noise']:g} from noise (the paper's protocol), "
            f"{s['gatys_iterations_content']:g} from the photo (median of {s['photos']} held-out photos, 256 px)")


def report_summary(report: dict) -> str:
    """The one-line summary (``python -m perceptual_utils models``) of a ``cpu_recipe`` report."""
    return style_summary(report) if report["kind"] == "style_transfer" else sr_summary(report)


def sr_summary(report: dict) -> str:
    """The one-line summary of a super-resolution model's ``cpu_recipe`` report (Set5)."""
    net = {r["set"]: r for r in report["rows"]["network"]}
    bic = {r["set"]: r for r in report["rows"]["bicubic"]}
    n, b = net["Set5"], bic["Set5"]
    return (f"Set5 x{report['scale']}: {n['psnr']:.2f} dB (bicubic {b['psnr']:.2f}), "
            f"LPIPS {n['lpips']:.3f} (bicubic {b['lpips']:.3f})")
