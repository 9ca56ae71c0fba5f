"""Notebook 02's exercise 6: the feature-inversion objective of the paper's Fig. 3 (Mahendran & Vedaldi 2015),
``||phi_j(x) - phi_j(y)||^2 / (C_j H_j W_j) + lambda_TV l_TV(x)``, checked against the objective
:func:`perceptual_utils.optimization.inversion.invert_features` minimises."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ... import losses
from .checking import CheckResult, as_tensor, register, run_check, tensors_close
from .inputs import photo, seeded

# ----------------------------------------------------------------------------- 6. the inversion objective


def reference_inversion_objective(net: Callable, x: torch.Tensor, y: torch.Tensor, layer: str,
                                  tv_weight: float) -> torch.Tensor:
    """The objective of feature inversion at ``layer``: the feature reconstruction loss between the image ``x``
    and the target ``y`` (``net(images)`` returns a dict of features by layer name), plus ``tv_weight`` times
    the total variation of ``x`` (what ``invert_features`` minimises over ``x``)."""
    with torch.no_grad():  # the target is fixed: only x is optimised
        target = net(y)[layer]
    return losses.feature_reconstruction_loss(net(x)[layer], target) + tv_weight * losses.total_variation_loss(x)


class _StandIn(nn.Module):
    """A small seeded two-stage ReLU network with VGG's layer names, so the check needs no weights."""

    def __init__(self, seed: int):
        super().__init__()
        with torch.random.fork_rng(devices=[]):  # checking must not move the notebook's global RNG
            torch.manual_seed(seed)
            self.conv1 = nn.Conv2d(3, 6, 3, padding=1).double()
            self.conv2 = nn.Conv2d(6, 8, 3, padding=1).double()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h1 = F.relu(self.conv1(x))
        return {"relu1_2": h1, "relu2_2": F.relu(self.conv2(F.avg_pool2d(h1, 2)))}


def _feat(net, x, y, layer):
    return losses.feature_reconstruction_loss(net(x)[layer], net(y)[layer])


INVERSION_MISTAKES: dict[str, tuple[str, Callable]] = {
    "pixel_loss": ("you compared the images themselves; feature inversion compares their features at the layer, "
                   "net(x)[layer] against net(y)[layer] (which is why deep layers lose colour and detail).",
                   lambda net, x, y, layer, tv: (x - y).pow(2).mean() + tv * losses.total_variation_loss(x)),
    "fixed_layer": ("you always used relu2_2; use the layer asked for, net(x)[layer].",
                    lambda net, x, y, layer, tv: _feat(net, x, y, "relu2_2") + tv * losses.total_variation_loss(x)),
    "no_tv": ("the total-variation term is missing: add tv_weight * total_variation(x), the smoothness prior "
              "(the paper's inversions use it).", lambda net, x, y, layer, tv: _feat(net, x, y, layer)),
    "tv_unweighted": ("the total-variation term is there but not weighted: multiply it by tv_weight.",
                      lambda net, x, y, layer, tv: _feat(net, x, y, layer) + losses.total_variation_loss(x)),
    "no_normalisation": ("divide the squared feature differences by C_j H_j W_j (and average over the batch), as "
                         "the feature reconstruction loss of exercise 2 does.",
                         lambda net, x, y, layer, tv: (net(x)[layer] - net(y)[layer]).pow(2).sum()
                         + tv * losses.total_variation_loss(x)),
    "tv_of_target": ("the total variation is of the image being optimised, x, not of the target y.",
                     lambda net, x, y, layer, tv: _feat(net, x, y, layer) + tv * losses.total_variation_loss(y)),
}


def _cases() -> list[tuple]:
    net_a, net_b = _StandIn(41), _StandIn(42)
    noise = torch.rand(1, 3, 32, 32, generator=seeded(43), dtype=torch.float64)
    return [(net_a, torch.rand(2, 3, 8, 8, generator=seeded(44), dtype=torch.float64),
             torch.rand(2, 3, 8, 8, generator=seeded(45), dtype=torch.float64), "relu1_2", 0.0),
            (net_a, torch.rand(1, 3, 10, 12, generator=seeded(46), dtype=torch.float64),
             torch.rand(1, 3, 10, 12, generator=seeded(47), dtype=torch.float64), "relu2_2", 0.5),
            (net_b, noise, photo()[None].double(), "relu2_2", 2.0),
            (net_b, noise, photo()[None].double(), "relu1_2", 1.0)]


def _compare(got, want) -> bool:
    g = as_tensor(got)
    return g.numel() == 1 and tensors_close(g.reshape(()), as_tensor(want).reshape(()))


def check_inversion_objective(fn: Callable | None, verbose: bool = True) -> CheckResult:
    """Check ``fn(net, x, y, layer, tv_weight) -> scalar``: the feature-inversion objective (reference:
    :func:`reference_inversion_objective`) on small seeded networks with VGG-16's layer names, random images
    and a photo."""
    cases = _cases()
    return run_check("inversion_objective", fn, reference_inversion_objective, cases, INVERSION_MISTAKES, _compare,
                     f"{len(cases)} inputs (2 seeded networks, layers relu1_2 and relu2_2, TV weights 0 to 2, "
                     "random images and a photo)", verbose=verbose)


register(6, "inversion_objective", check_inversion_objective, reference_inversion_objective, """
    with torch.no_grad():
        target = net(y)[layer]                       # the features to match (fixed)
    phi = net(x)[layer]
    feat = (phi - target).pow(2).sum(dim=(1, 2, 3)).mean() / phi[0].numel()
    tv = (x[:, :, 1:] - x[:, :, :-1]).pow(2).mean() + (x[..., 1:] - x[..., :-1]).pow(2).mean()
    return feat + tv_weight * tv
""")
