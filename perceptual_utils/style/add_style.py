"""A new painting in a trained multi-style network: ``train-style --style MINE.jpg --add-to paintings``.

With conditional instance norm (Dumoulin, Shlens & Kudlur 2017) every painting of a multi-style
network is only its own scale and shift (``gamma``, ``beta``) of each normalisation layer; the
convolutions are shared. Dumoulin et al. (Sec. 4, "new painting styles") add a painting to a
trained network by learning just those, with the convolutions frozen: 2 x 1,600 numbers in our
``modern`` network (:func:`style_parameter_count`) instead of its 1.68 M weights, which is why a
laptop CPU learns a new painting in minutes where training from scratch needs hours.

- :func:`load_multi_style_source`: the source network (a shipped name or a model file), refused
  with a one-line error when it is a single-style model;
- :func:`extend_network`: a copy with one style slot more, the new slot starting from the mean of
  the existing styles' ``gamma``, ``beta`` (a painting "between" the known ones, so the first steps
  already produce brush strokes rather than the identity's flat output);
- :func:`freeze_all_but_style`: only the new slot learns; everything else is bit for bit the source's;
- :class:`NewStyleLoss`: the style loss of the new slot.

The source file is only read. :func:`~perceptual_utils.style.training.train_style` (``add_to=``)
uses these pieces with the shared training loop, so checkpoints, exact resume and ``--time-budget``
work as for any run.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..blocks import ConditionalInstanceNorm2d
from ..model_io import ModelFileError, stored_digest
from ..shipped_models import load_model, resolve_model
from .net import StyleTransferNet
from .stylize import style_names
from .objective import StyleTransferLoss

#: Adam's learning rate for the new style's ``gamma``, ``beta`` (cosine-decayed as in the cpu recipe).
#: A few thousand parameters take a larger rate than the whole network's 1e-3: at 1e-2 the new slot
#: of ``paintings`` levels off within about 50 steps (``udnie``: Gatys-equivalent iterations from
#: noise 15.5 after 49 steps, 16.5 after 123 and 218; ``benchmarks/new_style.py``, docs/cpu-training.md,
#: "a new painting in ten minutes"). Other rates were not compared.
ADD_TO_LR = 1e-2


def load_multi_style_source(source: str | os.PathLike) -> tuple[StyleTransferNet, Path]:
    """The multi-style network to extend (a shipped model's name or a model file) and its file.

    Raises:
        ModelFileError: unknown name, unreadable file, not a style network, or a single-style one.
    """
    path = resolve_model(source, kind="style_transfer")
    net = load_model(path, kind="style_transfer").float()
    if int(getattr(net, "num_styles", 1)) < 2:
        raise ModelFileError(f"{source}: a single-style model; --add-to needs a multi-style model "
                             "(conditional instance norm, e.g. the shipped 'paintings')")
    return net, path


def extend_network(source: StyleTransferNet) -> StyleTransferNet:
    """A new network with ``source``'s weights and one style slot more (the last), whose ``gamma``,
    ``beta`` start at the mean of the existing styles'. ``source`` is left unchanged."""
    n = source.num_styles
    config = {k: v for k, v in source.config.items() if k != "num_styles"}
    net = StyleTransferNet(**config, num_styles=n + 1)
    state = {}
    cin = {name for name, m in source.named_modules() if isinstance(m, ConditionalInstanceNorm2d)}
    for key, value in source.state_dict().items():
        value = value.detach().float().clone()
        if key.rsplit(".", 1)[0] in cin:
            value = torch.cat([value, value.mean(0, keepdim=True)], 0)
        state[key] = value
    net.load_state_dict(state)
    net.training_info = dict(getattr(source, "training_info", {}) or {})
    return net


def style_parameters(net: nn.Module) -> list[nn.Parameter]:
    """Every conditional instance norm's ``weight`` and ``bias`` (``(num_styles, C)`` each)."""
    return [p for m in net.modules() if isinstance(m, ConditionalInstanceNorm2d) for p in (m.weight, m.bias)]


def style_parameter_count(net: nn.Module) -> int:
    """How many numbers one painting is in ``net``: ``gamma`` and ``beta`` of every norm layer."""
    return sum(p.shape[1] for p in style_parameters(net))


def freeze_all_but_style(net: nn.Module, index: int) -> list[torch.utils.hooks.RemovableHandle]:
    """Learn only style ``index``'s ``gamma``, ``beta``: every other parameter stops requiring a
    gradient, and the norm parameters' gradients are masked to that row. Adam then leaves every
    other value bit for bit as it was (its update of a parameter whose gradient is always zero is
    exactly zero). Returns the hooks (``.remove()`` them to unfreeze)."""
    for p in net.parameters():
        p.requires_grad_(False)
    hooks = []
    for p in style_parameters(net):
        p.requires_grad_(True)
        mask = torch.zeros(p.shape[0], 1, dtype=p.dtype, device=p.device)
        mask[index] = 1
        hooks.append(p.register_hook(lambda grad, mask=mask: grad * mask.to(grad.device, grad.dtype)))
    return hooks


class NewStyleLoss(StyleTransferLoss):
    """:class:`StyleTransferLoss` for one slot of a multi-style network: the batch is stylised with
    style ``index`` and scored against the new painting's Gram targets."""

    def __init__(self, perceptual, index: int, grid_jitter: int = 0, shift_weight: float = 0.0):
        super().__init__(perceptual, grid_jitter, shift_weight)
        self.index = int(index)

    def forward(self, model: nn.Module, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return super().forward(lambda x: model(x, style=self.index), batch)


def check_new_name(net: nn.Module, name: str, source: str | os.PathLike) -> None:
    """Refuse a painting whose name (its file's stem) the source already has."""
    if name in style_names(net):
        raise ModelFileError(f"{source} already has a style named {name!r}; rename the painting file "
                             f"(its name becomes the style's name)")


def added_style_info(source: StyleTransferNet, source_path: Path, style_path: Path,
                     style_weight: float) -> dict[str, Any]:
    """The training info of the extended network: every style's image, name and weight (the
    source's first, then the new painting), and where the shared weights came from."""
    info = source.training_info
    names = style_names(source)
    styles = info.get("style")
    if not isinstance(styles, list) or len(styles) != len(names):
        styles = [str(s) for s in names]  # the source does not name its images: keep the names
    weights = info.get("style_weights", [info.get("style_weight", style_weight)] * len(names))
    return {"style": [*styles, str(style_path)], "styles": [*names, style_path.stem],
            "style_weights": [*map(float, weights), float(style_weight)],
            "style_name": "+".join([*names, style_path.stem]),
            "add_to": source_path.stem, "add_to_digest": stored_digest(source_path) or "",
            "add_to_training": {k: info[k] for k in ("steps_done", "train_seconds", "hardware", "summary")
                                if k in info}}


def open_add_to(add_to: str | os.PathLike, paintings: list[Path], net_options: dict[str, Any],
                init_from: str | os.PathLike | None) -> tuple[StyleTransferNet, Path]:
    """Check an ``--add-to`` run's arguments and load its source (see :func:`load_multi_style_source`).

    Raises:
        ValueError: several paintings, network options, or ``--init-from`` given with ``--add-to``.
        ModelFileError: the source cannot be used, or already has a style of the painting's name.
    """
    if len(paintings) != 1:
        raise ValueError(f"--add-to learns one painting at a time; got {len(paintings)} --style files")
    if net_options:
        raise ValueError(f"--add-to keeps the source's network; drop {', '.join(sorted(net_options))}")
    if init_from is not None:
        raise ValueError("give either --add-to (a new style in a multi-style network) or --init-from, not both")
    source, path = load_multi_style_source(add_to)
    check_new_name(source, paintings[0].stem, add_to)
    return source, path


def source_objective(source: StyleTransferNet, style_size: int | None, content_layer: str,
                     style_layers: list[str]) -> tuple[int | None, str, list[str]]:
    """The painting's size and the loss layers of the source's own training (where its file
    records them), so every style of the new file is scored on one objective, as the metadata
    (one ``style_size``, one set of layers) says."""
    info = source.training_info
    return (info.get("style_size", style_size), info.get("content_layer", content_layer),
            list(info.get("style_layers", style_layers)))


def new_style_network(source: StyleTransferNet, source_path: Path, painting: Path,
                      style_weight: float) -> tuple[StyleTransferNet, dict[str, Any]]:
    """The network to train (:func:`extend_network`, frozen but for the new slot) and what its
    model file records (:func:`added_style_info`)."""
    net = extend_network(source)
    freeze_all_but_style(net, source.num_styles)
    return net, added_style_info(source, source_path, painting, style_weight)
