"""Export a trained model to ONNX: ``python -m perceptual_utils export --model NAME --format onnx --output FILE``.

The exported graph keeps :func:`~perceptual_utils.style.stylize.stylize`'s convention: input
``image``, float32 RGB in [0, 1], ``N x 3 x H x W``; output ``output``, float32 RGB in [0, 1],
``N x 3 x H x W`` (style) or ``N x 3 x sH x sW`` (super-resolution by ``s``). Batch, height and
width are dynamic. What ``StyleTransferNet.forward`` does around the network for sizes that are
not multiples of 4 (reflection padding of the bottom/right edge up to a multiple of 4, cropped off
the output, see :mod:`perceptual_utils.style.net`) is inside the graph, so the caller passes any
size and gets the same size back. Size limits (a reflection padding needs a side longer than the
padding): ``modern`` style networks need ``H, W >= 8``, ``paper`` ones more than their input
padding plus 3 (``H, W >= 44`` for the paper's 5 residual blocks), SR networks ``H, W >= 5``.

The multi-style network (conditional instance norm) has a second input ``style_weights``,
``N x num_styles`` float32: per image, the non-negative shares of the styles (normalised to sum
to 1 inside the graph; a one-hot row is exactly that style). The style names, in order, are in
the ONNX metadata (``styles``), beside ``kind`` and ``config``.

Batch norm is folded into the convs first; the graph is exported with PyTorch's TorchScript-based
ONNX exporter (``dynamo=False``: the dynamo exporter needs ``onnxscript``, which this package
does not otherwise use), opset 17. Post-processing that is not part of the network
(``upscale``'s histogram matching, ``stylize``'s ``preserve_color`` and ``strength``) is left to
the caller.
"""
from __future__ import annotations

import argparse
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .cli_options import add_command
from .errors import CLIError
from .model_io import atomic_write, model_kind

FORMATS = ("onnx",)
OPSET = 17


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise CLIError("ONNX export needs the onnx package: pip install onnx (or pip install -e '.[export]')") from None
    return onnx


class StyleExport(nn.Module):
    """A style network with the size handling of its ``forward`` written with traced shapes, so
    the exported graph pads and crops for every input size (``forward`` computes the padding in
    Python, which a trace would freeze to the example's size). ``style_weights``: see the module
    docstring (multi-style networks only)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        from .blocks import ConditionalInstanceNorm2d

        self.net = net
        self.norms = [m for m in net.modules() if isinstance(m, ConditionalInstanceNorm2d)]

    def forward(self, image: torch.Tensor, style_weights: torch.Tensor | None = None) -> torch.Tensor:
        net, p = self.net, self.net.input_padding
        if style_weights is not None:
            w = style_weights.float()
            for m in self.norms:
                m.set_style(w / w.sum(1, keepdim=True))
        h, w_ = image.shape[-2], image.shape[-1]
        # Bottom/right padding up to a multiple of 4 (StyleTransferNet._extra for sizes >= 8).
        x = F.pad(image, (p, p + (4 - w_ % 4) % 4, p, p + (4 - h % 4) % 4), mode="reflect")
        y = net.output(net.up(net.residual(net.down(x))))[..., :h, :w_]
        if net.global_residual:
            y = (y + x[..., p:p + h, p:p + w_]).clamp(0, 1)
        return y


def export_module(model: nn.Module) -> tuple[nn.Module, list[str], tuple[torch.Tensor, ...]]:
    """The module to trace for ``model`` (batch norm folded, eval mode), its input names and
    example inputs (odd sizes on purpose, so nothing is specialised to a multiple of 4)."""
    from .style.net import StyleTransferNet, fold_batch_norm

    net = fold_batch_norm(model.module if hasattr(model, "module") else model).cpu().float().eval()
    net.requires_grad_(False)
    if isinstance(net, StyleTransferNet):
        side = 2 * net.input_padding + 45
        image = torch.rand(2, 3, side, side + 6)
        if net.num_styles > 1:
            weights = torch.full((2, net.num_styles), 1.0 / net.num_styles)
            return StyleExport(net), ["image", "style_weights"], (image, weights)
        return StyleExport(net), ["image"], (image,)
    return net, ["image"], (torch.rand(2, 3, 23, 29),)


_BICUBIC_AA = "aten::_upsample_bicubic2d_aa"


def _bicubic_symbolic(scale: int):
    """ONNX for :func:`~perceptual_utils.sr.degradation.bicubic_upsample` by the integer ``scale``
    (PyTorch's antialiased bicubic, which the exporter lacks). Enlarging, antialiasing changes
    nothing, and Pillow-style bicubic is ONNX ``Resize`` with ``cubic_coeff_a = -0.5``, half-pixel
    centres and ``exclude_outside = 1`` (taps outside the image dropped and the rest renormalised,
    as Pillow does); the tests compare it with PyTorch on odd sizes."""

    def symbolic(g, x, output_size, align_corners, scale_factors):
        roi = g.op("Constant", value_t=torch.tensor([], dtype=torch.float32))
        scales = g.op("Constant", value_t=torch.tensor([1.0, 1.0, scale, scale], dtype=torch.float32))
        return g.op("Resize", x, roi, scales, mode_s="cubic", cubic_coeff_a_f=-0.5,
                    coordinate_transformation_mode_s="half_pixel", exclude_outside_i=1)

    return symbolic


def _metadata(model: nn.Module) -> dict[str, str]:
    info = getattr(model, "training_info", None) or {}
    meta = {"kind": model_kind(model), "config": json.dumps(dict(model.config)),
            "convention": "float32 RGB in [0, 1], N x 3 x H x W in and out", "exported_by": "perceptual_utils"}
    styles = info.get("styles") if isinstance(info, dict) else None
    if isinstance(styles, list):
        meta["styles"] = json.dumps(styles)
    return meta


def export_onnx(model: nn.Module | str | os.PathLike, output: str | os.PathLike, opset: int = OPSET) -> Path:
    """Write ``model`` (a network, a model file or a shipped model's name) as an ONNX file.

    The file is written atomically; ``output`` may not be the model file itself.

    Raises:
        CLIError: ``onnx`` not installed, or ``output`` is the model file.
        ModelFileError: ``model`` is not a readable model file or shipped model name.
    """
    onnx = _require_onnx()
    out = Path(output).expanduser()
    if isinstance(model, (str, os.PathLike)):
        from .shipped_models import load_model, resolve_model

        source = resolve_model(model)
        if out.exists() and source.exists() and os.path.samefile(out, source):
            raise CLIError(f"--output {output} is the model file itself; choose another file name")
        model = load_model(source)
    if out.is_dir():
        raise CLIError(f"--output {output} is a folder; give a file name such as model.onnx")
    module, names, example = export_module(model)
    dims = {0: "batch", 2: "height", 3: "width"}
    axes = {n: dims for n in names if n == "image"} | {"output": dims}
    if "style_weights" in names:
        axes["style_weights"] = {0: "batch"}

    scale = int(getattr(model, "config", {}).get("scale", 0) or 0)

    def write(tmp: str) -> None:
        with warnings.catch_warnings():  # the exporter's deprecation and tracer notes are not the user's concern
            warnings.simplefilter("ignore")
            if scale:  # the SR global residual's bicubic upsampling
                torch.onnx.register_custom_op_symbolic(_BICUBIC_AA, _bicubic_symbolic(scale), int(opset))
            try:
                torch.onnx.export(module, example, tmp, dynamo=False, input_names=names, output_names=["output"],
                                  dynamic_axes=axes, opset_version=int(opset))
            finally:
                if scale:
                    torch.onnx.unregister_custom_op_symbolic(_BICUBIC_AA, int(opset))
        proto = onnx.load(tmp)
        for key, value in _metadata(model).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp)

    return atomic_write(out, write)


def _run_cli(args: argparse.Namespace) -> int:
    """Export a style or super-resolution model (a file or a shipped model's name) to ONNX: float32 RGB
    in [0, 1], N x 3 x H x W in and out, dynamic batch and size; multi-style models take a second input
    style_weights (N x num_styles)."""
    if args.format not in FORMATS:
        raise CLIError(f"--format {args.format!r} is not supported; choose from {', '.join(FORMATS)}")
    path = export_onnx(args.model, args.output, opset=args.opset)
    print(f"written: {path}")
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``export`` to the command line."""
    p = add_command(subparsers, "export", _run_cli, help="export a trained model to ONNX")
    p.add_argument("--model", required=True, help="model file (.safetensors) or a shipped model's name")
    p.add_argument("--format", default="onnx", help="onnx (the only format so far)")
    p.add_argument("--output", required=True, help="the file to write, e.g. starry_night.onnx")
    p.add_argument("--opset", type=int, default=OPSET, help="ONNX opset (default: %(default)s)")
