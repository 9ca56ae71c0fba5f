"""The standard super-resolution benchmark: Set5, Set14, BSD100 at x4 and x8.

Protocol (:mod:`perceptual_utils.sr.degradation`, :mod:`perceptual_utils.sr.metrics`): crop each HR
image to multiples of the scale, LR by MATLAB-style bicubic downsampling rounded to 8 bits,
super-resolve, round the result to 8 bits (as a saved image), then PSNR and SSIM on the BT.601
Y channel after shaving ``scale`` pixels from each border, and LPIPS-VGG on the same RGB crop.

``python -m perceptual_utils evaluate-sr --method bicubic --scale 4 --sets Set5 Set14 BSD100``
``python -m perceptual_utils evaluate-sr --model x4.safetensors --sets Set5 --per-image --csv out.csv``
"""
from __future__ import annotations

import argparse
import csv
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..cli_options import add_progress_option, add_threads_option
from ..config import data_root
from ..errors import CLIError
from ..images import list_images, load_image, save_image
from ..model_io import atomic_write
from .degradation import bicubic_upsample, evaluation_pair, quantize
from .metrics import LPIPSMetric, psnr, shave, ssim
from .upscale import load_sr_model, model_scale, upscale

DEFAULT_SETS = ("Set5", "Set14", "BSD100")
METHODS = ("bicubic",)

#: Johnson et al. (2016), PSNR dB / SSIM, Set5 x4 -- the rows we are sure of: bicubic, SRCNN
#: (Dong et al. 2014, the paper's per-pixel baseline trained for x4 only) and the paper's two
#: networks. The arXiv version reports them as the Set5 means printed in its Fig. 8; its Set14
#: (Fig. 8) and BSD100 (Fig. 9, x8) means are printed in the figures too, but could not be
#: transcribed and checked offline, so they are left out rather than guessed.
PAPER_RESULTS: dict[tuple[str, int], dict[str, tuple[float, float]]] = {
    ("Set5", 4): {"bicubic": (28.43, 0.8114), "srcnn": (30.48, 0.8628), "pixel": (28.40, 0.8205),
                  "feature": (27.09, 0.7680)},
}
#: How :func:`comparison_table` names a paper-only row (a method none of ours matches).
PAPER_METHOD_NAMES = {"bicubic": "bicubic", "srcnn": "SRCNN", "pixel": "per-pixel", "feature": "feature"}


@dataclass
class SREvaluation:
    """Evaluation results: one row per image and the mean per set."""

    method: str
    scale: int
    per_image: list[dict] = field(default_factory=list)
    #: Whether :meth:`table` lists every image by default (``evaluate_sr(per_image=...)``).
    show_per_image: bool = False

    @property
    def summary(self) -> list[dict]:
        """Mean PSNR/SSIM/LPIPS per set, in the order the sets were evaluated."""
        rows = []
        for name in dict.fromkeys(r["set"] for r in self.per_image):
            items = [r for r in self.per_image if r["set"] == name]
            row = {"set": name, "method": self.method, "scale": self.scale, "images": len(items)}
            for key in ("psnr", "ssim", "lpips"):
                values = [r[key] for r in items if r.get(key) is not None]
                row[key] = sum(values) / len(values) if values else None
            rows.append(row)
        return rows

    def table(self, per_image: bool | None = None, paper: bool = True) -> str:
        """A plain-text table: means per set, every image too if ``per_image`` (default:
        :attr:`show_per_image`), and the paper's reported numbers beside where known."""
        per_image = self.show_per_image if per_image is None else per_image
        def fmt(row: dict, label: str) -> str:
            lp = "     -" if row.get("lpips") is None else f"{row['lpips']:6.4f}"
            return f"{label:<24} {row['psnr']:7.2f} {row['ssim']:7.4f} {lp}"

        lines = [f"{self.method} x{self.scale}", f"{'set / image':<24} {'PSNR':>7} {'SSIM':>7} {'LPIPS':>6}"]
        for row in self.summary:
            if per_image:
                for r in (r for r in self.per_image if r["set"] == row["set"]):
                    lines.append(fmt(r, f"  {r['image']}"))
            lines.append(fmt(row, f"{row['set']} (mean of {row['images']})"))
            reported = PAPER_RESULTS.get((row["set"], self.scale)) if paper else None
            if reported:
                lines.append("  paper (Johnson et al. 2016): " + ", ".join(
                    f"{k} {p:.2f}/{s:.4f}" for k, (p, s) in reported.items()))
        return "\n".join(lines)

    def write_csv(self, path: str | os.PathLike, per_image: bool = True) -> Path:
        """Write per-image rows (or the per-set means) as CSV."""
        rows = self.per_image if per_image else self.summary
        def write(tmp: str) -> None:
            with open(tmp, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["set"])
                writer.writeheader()
                writer.writerows(rows)

        return atomic_write(path, write)  # temporary file + rename: never a truncated file

    def write_json(self, path: str | os.PathLike) -> Path:
        """Write means and per-image rows as JSON."""
        text = json.dumps({"method": self.method, "scale": self.scale, "summary": self.summary,
                           "per_image": self.per_image}, indent=2)
        return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def comparison_table(results: Sequence[SREvaluation], paper: bool = True) -> str:
    """One table of several evaluations: a row per (set, scale, method), the paper's number beside.

    ``results`` may mix methods and scales; methods named ``bicubic``, ``pixel`` or ``feature``
    (or containing those words) are matched with the paper's rows of :data:`PAPER_RESULTS`.
    """
    header = f"{'set':<8} {'scale':>5} {'method':<18} {'PSNR':>7} {'SSIM':>7} {'LPIPS':>6}   paper PSNR/SSIM"
    lines = [header, "-" * len(header)]
    rows = [(row, res) for res in results for row in res.summary]
    set_order = list(dict.fromkeys(row["set"] for row, _ in rows))
    rows.sort(key=lambda rr: (set_order.index(rr[0]["set"]), rr[0]["scale"]))
    for i, (row, res) in enumerate(rows):
        group = (row["set"], row["scale"])
        reported = PAPER_RESULTS.get(group, {}) if paper else {}
        key = next((k for k in reported if k in res.method.lower()), None)
        ref = f"{reported[key][0]:.2f}/{reported[key][1]:.4f}" if key else "-"
        lp = "     -" if row.get("lpips") is None else f"{row['lpips']:6.4f}"
        lines.append(f"{row['set']:<8} {'x' + str(row['scale']):>5} {res.method:<18} {row['psnr']:7.2f} "
                     f"{row['ssim']:7.4f} {lp}   {ref}")
        if i + 1 == len(rows) or (rows[i + 1][0]["set"], rows[i + 1][0]["scale"]) != group:
            # The end of a (set, scale) group: the paper's rows that none of ours stands beside (SRCNN).
            ours = [r.method.lower() for rw, r in rows if (rw["set"], rw["scale"]) == group]
            for k, (p, s) in reported.items():
                if not any(k in m for m in ours):
                    label = f"{PAPER_METHOD_NAMES.get(k, k)} (paper)"
                    lines.append(f"{row['set']:<8} {'x' + str(row['scale']):>5} {label:<18} {'-':>7} {'-':>7} "
                                 f"{'-':>6}   {p:.2f}/{s:.4f}")
    return "\n".join(lines)


def load_benchmark(name: str, root: str | os.PathLike | None = None) -> list[tuple[str, torch.Tensor]]:
    """The HR images of a benchmark set (``data_root()/sr/<name>``) as ``(stem, (3, H, W))`` pairs."""
    folder = data_root(root) / "sr" / name
    if not folder.is_dir():
        raise FileNotFoundError(f"benchmark set {name!r} not found at {folder}")
    return [(p.stem, load_image(p)) for p in list_images(folder)]


def make_super_resolver(model_or_method: nn.Module | str | os.PathLike, scale: int,
                        match_histogram: bool = True) -> tuple[str, Callable[[torch.Tensor], torch.Tensor]]:
    """``(name, fn)`` where ``fn(lr (3, h, w)) -> sr (3, scale*h, scale*w)`` in [0, 1].

    ``model_or_method``: ``"bicubic"``, a super-resolution network, or a model file path.
    """
    if isinstance(model_or_method, str) and model_or_method in METHODS:
        return "bicubic", lambda lr: bicubic_upsample(lr, scale)
    if isinstance(model_or_method, nn.Module):
        model, name = model_or_method, type(model_or_method).__name__
    else:
        model, name = load_sr_model(model_or_method), Path(model_or_method).stem
    if model_scale(model) != scale:
        raise ValueError(f"model {name} upsamples x{model_scale(model)}, but scale {scale} was asked for")
    return name, lambda lr: upscale(model, lr, match_histogram=match_histogram).cpu()


def _crop_box(h: int, w: int, size: int) -> tuple[int, int, int]:
    size = min(size, h, w)
    return (h - size) // 2, (w - size) // 2, size


def comparison_strip(images: Sequence[torch.Tensor], top: int, left: int, size: int, zoom: int = 2,
                     gap: int = 4) -> torch.Tensor:
    """Same ``size`` crop of equally sized images, enlarged ``zoom`` x (nearest) side by side."""
    crops = [img[..., top:top + size, left:left + size] for img in images]
    crops = [F.interpolate(c.unsqueeze(0), scale_factor=zoom, mode="nearest")[0] for c in crops]
    spacer = torch.ones(3, crops[0].shape[-2], gap)
    parts = []
    for c in crops:
        parts += [c, spacer]
    return torch.cat(parts[:-1], dim=-1)


@torch.no_grad()
def evaluate_sr(model_or_method: nn.Module | str | os.PathLike, scale: int = 4,
                sets: Sequence[str] = DEFAULT_SETS, root: str | os.PathLike | None = None,
                per_image: bool = False, lpips: bool | LPIPSMetric = True, match_histogram: bool = True,
                crops: str | os.PathLike | None = None, crop_size: int = 96, progress: bool = True,
                name: str | None = None) -> SREvaluation:
    """Evaluate bicubic or a network on benchmark sets with the standard protocol.

    Args:
        model_or_method: ``"bicubic"``, a :class:`SuperResolutionNet`, or a model file path.
        scale: upsampling factor (a network must have the same).
        sets: names of folders under ``data_root(root)/sr``.
        per_image: make ``result.table()`` list every image (per-image rows are always kept
            in ``result.per_image`` and written to CSV/JSON).
        lpips: compute LPIPS (``True``), skip it (``False``), or reuse an :class:`LPIPSMetric`.
        match_histogram: the paper's post-processing for networks (ignored for bicubic).
        crops: folder for side-by-side crops ``[LR (nearest) | output | ground truth]`` per image.
        crop_size: HR crop side of those figures.
        name: the method's name in tables and file names (default: ``bicubic``, the model
            file's stem, or the network's class name).

    Returns:
        :class:`SREvaluation` with ``per_image`` rows and ``summary`` (mean per set).
    """
    return evaluate_methods([(name, model_or_method)], scale, sets=sets, root=root, per_image=per_image,
                            lpips=lpips, match_histogram=match_histogram, crops=crops, crop_size=crop_size,
                            progress=progress)[0]


@torch.no_grad()
def evaluate_methods(methods: Sequence[tuple[str | None, nn.Module | str | os.PathLike]], scale: int = 4,
                     sets: Sequence[str] = DEFAULT_SETS, root: str | os.PathLike | None = None,
                     per_image: bool = False, lpips: bool | LPIPSMetric = True, match_histogram: bool = True,
                     crops: str | os.PathLike | None = None, crop_size: int = 96,
                     progress: bool = True) -> list[SREvaluation]:
    """:func:`evaluate_sr` for several methods of one scale, image by image: each benchmark image is
    loaded and degraded once, and its LPIPS features computed once, for all methods (with LPIPS,
    about half the work of evaluating them one after another).

    ``methods``: ``(name or None, model_or_method)`` pairs, as :func:`evaluate_sr` takes them.
    Returns one :class:`SREvaluation` per method, in order; the rows are the same as
    :func:`evaluate_sr` gives for each method alone.
    """
    resolvers = []
    for name, target in methods:
        default_name, fn = make_super_resolver(target, scale, match_histogram)
        resolvers.append((name or default_name, fn))
    metric = lpips if isinstance(lpips, LPIPSMetric) else (LPIPSMetric() if lpips else None)
    results = [SREvaluation(method=name, scale=int(scale), show_per_image=per_image) for name, _ in resolvers]
    label = resolvers[0][0] if len(resolvers) == 1 else f"{len(resolvers)} methods"
    for set_name in sets:
        images = load_benchmark(set_name, root)
        for stem, hr_full in tqdm(images, desc=f"{set_name} x{scale} ({label})", unit="img",
                                  disable=not progress, leave=False):
            lr, hr = evaluation_pair(hr_full, scale)
            reference = None if metric is None else metric.features(shave(hr, scale).unsqueeze(0))
            if crops is not None:
                box = _crop_box(*hr.shape[-2:], crop_size)
                lr_big = F.interpolate(lr.unsqueeze(0), scale_factor=scale, mode="nearest")[0]
            for (name, fn), result in zip(resolvers, results):
                sr = quantize(fn(lr))  # 8-bit, like a saved result
                if sr.shape != hr.shape:
                    raise ValueError(f"{set_name}/{stem}: output {tuple(sr.shape)} does not match HR "
                                     f"{tuple(hr.shape)}")
                row = {"set": set_name, "image": stem, "method": name, "scale": int(scale),
                       "psnr": float(psnr(sr, hr, shave_border=scale)),
                       "ssim": float(ssim(sr, hr, shave_border=scale)), "lpips": None}
                if metric is not None:
                    row["lpips"] = float(metric.distance(metric.features(shave(sr, scale).unsqueeze(0)),
                                                         reference)[0])
                result.per_image.append(row)
                if crops is not None:
                    save_image(comparison_strip([lr_big, sr, hr], *box),
                               Path(crops) / f"{set_name}_{stem}_x{scale}_{name}.png")
    return results


def _run(args: argparse.Namespace) -> int:
    if (args.model is None) == (args.method is None):
        raise CLIError("give exactly one of --model FILE or --method bicubic")
    inputs = [Path(args.model)] if args.model is not None and Path(args.model).is_file() else []
    for set_name in args.sets:  # before any work: every set must hold images
        folder = data_root(args.root) / "sr" / set_name
        if not folder.is_dir():
            raise CLIError(f"benchmark set {set_name!r} not found at {folder} "
                           f"(run `python -m perceptual_utils fetch-data sr`, or give --root)")
        if not list_images(folder):
            raise CLIError(f"benchmark set {set_name!r} at {folder} has no image files")
        inputs += list_images(folder)
    written: dict[Path, str] = {}
    for option in ("csv", "json"):
        if getattr(args, option) and Path(getattr(args, option)).is_dir():
            raise CLIError(f"--{option} {getattr(args, option)}: is an existing folder, not a file name")
        if getattr(args, option):  # never onto the model or a benchmark image, nor both onto one file
            target = Path(getattr(args, option)).resolve()
            for source in inputs:
                if source.resolve() == target:
                    raise CLIError(f"--{option} {getattr(args, option)}: would overwrite the input file {source}")
            if target in written:
                raise CLIError(f"--{option} and --{written[target]} name the same file {target}")
            written[target] = option
    if args.model is not None:
        model = load_sr_model(args.model)
        scale = args.scale or model_scale(model)
        target: nn.Module | str = model
    else:
        scale, target = args.scale or 4, args.method
    result = evaluate_sr(target, scale, sets=args.sets, root=args.root, per_image=args.per_image,
                         lpips=not args.no_lpips,
                         match_histogram=not args.no_histogram_match, crops=args.crops, progress=args.progress,
                         name=Path(args.model).stem if args.model is not None else None)
    print(result.table())
    if args.csv:
        print(f"wrote {result.write_csv(args.csv, per_image=True)}")
    if args.json:
        print(f"wrote {result.write_json(args.json)}")
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add the ``evaluate-sr`` command."""
    p = sub.add_parser("evaluate-sr", help="PSNR/SSIM/LPIPS on Set5/Set14/BSD100 (standard protocol)",
                       description="Evaluate bicubic upsampling or a super-resolution model on the standard "
                                   "benchmarks: Y-channel PSNR/SSIM with a `scale`-pixel border shave, and LPIPS-VGG.")
    p.add_argument("--model", default=None, help="super-resolution model file (.safetensors)")
    p.add_argument("--method", default=None, choices=METHODS, help="a classical baseline instead of a model")
    p.add_argument("--scale", type=int, default=None, choices=(2, 4, 8),
                   help="upsampling factor (default: the model's, or 4)")
    p.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS), help="benchmark folders under DATA/sr")
    p.add_argument("--root", default=None, help="data root (default: $PERCEPTUAL_UTILS_DATA or ./data)")
    p.add_argument("--per-image", action="store_true", help="print every image, not only the means")
    p.add_argument("--csv", default=None, metavar="FILE", help="write per-image results as CSV")
    p.add_argument("--json", default=None, metavar="FILE", help="write means and per-image results as JSON")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS (faster)")
    p.add_argument("--no-histogram-match", action="store_true", help="do not histogram-match network outputs")
    p.add_argument("--crops", default=None, metavar="DIR", help="save side-by-side crops per image here")
    add_threads_option(p)
    add_progress_option(p)
    p.set_defaults(func=_run)
