"""The fastest exact-enough inference path on the machine the code runs on, in one place.

:func:`choose_path` turns a trained network (style or super-resolution) into a callable
:class:`FastModel`; ``stylize()``, ``upscale()``, their command lines and the tiler all run through
it, so every caller gets the same precision, memory layout and graph rewrites::

    fast = choose_path(net)                 # amp=True: the fast path; amp=False: plain float32
    out = fast(batch)                       # (B, 3, H, W) float32 in [0, 1] -> float32 on the CPU
    out = fast(batch, style=weights)        # multi-style networks: index / (B, N) mixing weights

What the path does (each choice measured in ``benchmarks/inference.py``, results in
``benchmarks/results/inference_<threads>t.json``):

- **precision**: CUDA: float16 weights and activations (as ``stylize`` always did); CPU: float32.
  bf16 autocast is opt-in (``cpu_bf16=True``) and only worth it where the CPU computes bf16
  natively (AVX512-BF16 or AMX, :func:`~perceptual_utils.config.cpu_has_native_bf16`; emulated it
  is slower than float32): measured on a shipped model and a photo at 256 px, bf16 autocast
  changes pixels by 1.0/255 on average but up to 24/255 at worst
  (``benchmarks/results/inference_1t.json``, ``bf16_autocast_difference_at_smallest_size``),
  more than the ~2/255 nobody would see, so it is not the default. ``amp=False`` forces float32.
- **graph rewrites** (CPU, float32-exact up to rounding, :mod:`perceptual_utils.inference_layers`):
  nearest-neighbour x2 + 3x3 conv becomes four 2x2 "sub-pixel" convs on the low-resolution map
  (2.25x fewer multiply-adds, no upsampled copy), and convs with fewer than 8 output channels
  (the 9x9 output layers) run in channels-last layout, where oneDNN's kernels were about twice as
  fast for them (AMD EPYC, AVX2, one thread). The whole network in channels-last was *slower* in float32
  on an AVX2 CPU (instance norm and reflection padding lose more than the convs gain), so only
  those layers switch.
- **layout on CUDA**: channels-last for the whole network (tensor cores), as before.
- **threads**: ``threads=N`` sets torch's intra-op threads (a process-wide setting).
- **backend** (opt-in): ``backend="onnxruntime"`` runs whole images through ONNX Runtime on the
  exported graph (see :func:`select_path`).

Batch norm (the paper variant) is folded into the convs first
(:func:`~perceptual_utils.style.net.fold_batch_norm`).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .config import resolve_device

PRECISIONS = ("float32", "bfloat16", "float16")
BACKENDS = ("torch", "onnxruntime")


@dataclass(frozen=True)
class InferencePath:
    """How a network runs: ``device``, ``precision`` (one of :data:`PRECISIONS`; ``bfloat16`` is
    autocast on the CPU, ``float16`` is half weights on CUDA), ``channels_last`` (the whole
    network's layout), ``rewrite`` (the exact graph rewrites of :mod:`.inference_layers`) and
    ``threads`` (``None``: torch's setting is left as it is)."""

    device: torch.device
    precision: str = "float32"
    channels_last: bool = False
    rewrite: bool = True
    threads: int | None = None
    backend: str = "torch"

    def describe(self) -> str:
        """One line for logs, benchmark JSON and the README."""
        parts = [self.device.type, self.precision]
        if self.channels_last:
            parts.append("channels-last")
        if self.rewrite:
            parts.append("sub-pixel upsampling + channels-last narrow convs")
        if self.threads:
            parts.append(f"{self.threads} thread(s)")
        if self.backend != "torch":
            parts.append(f"whole images on {self.backend}")
        return ", ".join(parts)


def select_path(device: str | torch.device | None = None, amp: bool = True,
                threads: int | None = None, backend: str = "torch", cpu_bf16: bool = False) -> InferencePath:
    """The fastest exact-enough :class:`InferencePath` for ``device`` (default: CUDA if available).

    ``amp=False``: float32 (the rewrites stay: they compute the same sums in another order).
    ``cpu_bf16=True`` (with ``amp``): bf16 autocast on the CPU, fast only with native bf16 and
    visibly less exact (see the module docstring).
    ``backend="onnxruntime"`` (CPU, float32 only; needs ``onnxruntime`` and ``onnx``): whole
    images run through ONNX Runtime on the exported graph (:mod:`perceptual_utils.export`),
    tiles still through torch. Opt-in: exporting costs seconds per model, which pays off for
    video and live frames, not for one photo, and it did not win at every size
    (``benchmarks/results/inference_1t.json``).
    """
    dev = resolve_device(device)
    if threads is not None and (isinstance(threads, bool) or int(threads) < 1):
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown inference backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if dev.type == "cuda":
        path = InferencePath(dev, "float16" if amp else "float32", channels_last=True, rewrite=False,
                             threads=threads)
    else:
        precision = "bfloat16" if amp and cpu_bf16 and dev.type == "cpu" else "float32"
        path = InferencePath(dev, precision, channels_last=False, rewrite=dev.type == "cpu", threads=threads)
    if backend == "onnxruntime":
        if dev.type != "cpu" or path.precision != "float32":
            raise ValueError(f"the onnxruntime backend runs float32 on the CPU; this path is "
                             f"{path.precision} on {dev.type} (use amp=False, device='cpu')")
        path = InferencePath(dev, "float32", rewrite=True, threads=threads, backend="onnxruntime")
    return path


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model  # DDP / DataParallel


@torch.no_grad()
def prepare(model: nn.Module, path: InferencePath) -> nn.Module:
    """An inference copy of ``model`` for ``path``: batch norm folded, eval mode, no gradients,
    rewritten, moved and cast. ``model`` itself is not changed. The copy carries
    ``inference_path`` (and ``inference_ready = True``) so it is not prepared twice."""
    from .inference_layers import rewrite_for_cpu
    from .style.net import fold_batch_norm

    net = fold_batch_norm(_unwrap(model)).to(path.device).eval()  # a copy, also without batch norm
    net.requires_grad_(False)
    if path.rewrite:
        net = rewrite_for_cpu(net)
    if path.channels_last:
        net = net.to(memory_format=torch.channels_last)
    if path.precision == "float16":
        net = net.half()
    net.inference_path = path
    net.inference_ready = True
    return net


class FastModel:
    """A prepared network and its :class:`InferencePath`; call it like the network.

    ``fast(x, style=None)`` -> float32 output on the network's device. ``fast.run(module, x,
    style)`` does the same with another module built from ``fast.net`` (the tiler's copy with
    frozen instance norms). ``fast.net`` is the prepared ``nn.Module`` (``config``,
    ``num_styles``, ``style_selection`` and ``training_info`` of the original are kept).
    """

    def __init__(self, net: nn.Module, path: InferencePath):
        self.net, self.path = net, path
        # Set by choose_path(backend="onnxruntime") on the prepared network, so it travels with it.
        self._session = getattr(net, "ort_session", None)

    def run(self, module: nn.Module, x: torch.Tensor, style: Any = None) -> torch.Tensor:
        """``module(x[, style])`` with this path's device, dtype, layout and autocast; float32 out."""
        path = self.path
        x = x.to(path.device, dtype=torch.float16 if path.precision == "float16" else torch.float32)
        if path.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        bf16 = path.precision == "bfloat16"
        with torch.inference_mode(), torch.autocast(path.device.type, dtype=torch.bfloat16, enabled=bf16):
            y = module(x) if style is None else module(x, style=style)
        return y.float().contiguous()

    def __call__(self, x: torch.Tensor, style: Any = None) -> torch.Tensor:
        if self._session is None:
            return self.run(self.net, x, style)
        feeds = {"image": x.detach().float().cpu().contiguous().numpy()}
        n = int(getattr(self.net, "num_styles", 1))
        if n > 1:  # the exported graph takes per-image mixing weights
            sel = self.net.style_selection(style, x.shape[0])
            weights = torch.zeros(1, n) if sel is None else sel
            if sel is None:
                weights[0, 0] = 1
            elif not sel.is_floating_point():
                weights = torch.nn.functional.one_hot(sel, n).float()
            feeds["style_weights"] = weights.expand(x.shape[0], n).contiguous().numpy()
        return torch.from_numpy(self._session.run(None, feeds)[0])

    def runner(self, style: Any = None) -> Callable[[nn.Module, torch.Tensor], torch.Tensor]:
        """``run(module, x)`` with ``style`` bound: the signature the tiler takes."""
        return lambda module, x: self.run(module, x, style)

    def __repr__(self) -> str:
        return f"FastModel({type(self.net).__name__}, {self.path.describe()})"


def _ort_session(net: nn.Module, path: InferencePath) -> Any:
    """An ONNX Runtime session on ``net``'s exported graph, ``path.threads`` (or torch's) threads."""
    import tempfile

    import onnxruntime as ort

    from .export import export_onnx

    with tempfile.TemporaryDirectory(prefix="perceptual-utils-onnx-") as folder:
        data = export_onnx(net, os.path.join(folder, "net.onnx")).read_bytes()
    options = ort.SessionOptions()
    options.intra_op_num_threads = path.threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def choose_path(model: nn.Module | str | os.PathLike | FastModel, device: str | torch.device | None = None,
                amp: bool = True, threads: int | None = None, backend: str = "torch",
                cpu_bf16: bool = False) -> FastModel:
    """The fast inference callable for ``model`` (a network, a prepared network, a
    :class:`FastModel`, or a model file / shipped model name) on ``device``.

    ``amp``: the fast precision where the hardware has it (see the module docstring); ``False``
    for float32. ``threads``: torch's intra-op threads (set process-wide when given).
    ``backend``: ``"torch"`` (default) or ``"onnxruntime"``; ``cpu_bf16``: see :func:`select_path`.
    """
    if isinstance(model, FastModel):
        return model
    if isinstance(model, (str, os.PathLike)):
        from .shipped_models import load_model  # a shipped name or a path, any kind
        model = load_model(model)
    if threads is not None:
        torch.set_num_threads(int(threads))
    ready = getattr(model, "inference_path", None)
    if ready is not None:
        return FastModel(model, ready)
    path = select_path(device, amp=amp, threads=threads, backend=backend, cpu_bf16=cpu_bf16)
    net = prepare(model, path)
    if backend == "onnxruntime":
        # Exported from the original network: the rewrites are torch-side speed-ups (measured slower in ORT).
        net.ort_session = _ort_session(_unwrap(model), path)
    return FastModel(net, path)
