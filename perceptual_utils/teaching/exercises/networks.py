"""Notebook 03's exercise 7: the paper's residual block (unpadded 3x3 convs, centre-cropped shortcut, no ReLU
after the sum), checked against :class:`perceptual_utils.blocks.ResidualBlock`."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ... import blocks
from .checking import ERROR_SIGNS, CheckResult, call_student, factor_hint, register, run_check, tensor_compare
from .inputs import photo, seeded


# ----------------------------------------------------------------------------- 7. residual block

def _block_parts(block: blocks.ResidualBlock) -> tuple[nn.Module, nn.Module, nn.Module, nn.Module]:
    (conv1, norm1, _relu), (conv2, norm2) = block.body[0], block.body[1]
    return conv1, norm1, conv2, norm2


def reference_residual_forward(x: torch.Tensor, conv1: nn.Module, norm1: nn.Module, conv2: nn.Module,
                               norm2: nn.Module) -> torch.Tensor:
    """The paper's residual block (:class:`perceptual_utils.blocks.ResidualBlock`, unpadded): two 3x3 convs
    with norm, ReLU between them, no ReLU after the sum, shortcut centre-cropped by 2 px per side."""
    y = F.relu(norm1(conv1(x)))
    y = norm2(conv2(y))
    return x[..., 2:-2, 2:-2] + y


def _body(x, c1, n1, c2, n2):
    return n2(c2(F.relu(n1(c1(x)))))


RESIDUAL_MISTAKES: dict[str, tuple[str, Callable]] = {
    "relu_after_add": ("no ReLU after the sum: the paper follows Gross & Wilber, output = shortcut + body(x), so "
                       "the block can pass negative values on (and stay close to the identity).",
                       lambda x, c1, n1, c2, n2: F.relu(x[..., 2:-2, 2:-2] + _body(x, c1, n1, c2, n2))),
    "no_shortcut": ("there is no shortcut: add the (cropped) input x to the output of the second conv.",
                    lambda x, c1, n1, c2, n2: _body(x, c1, n1, c2, n2)),
    "corner_crop": ("crop the shortcut at the centre, x[..., 2:-2, 2:-2]; cropping 4 px from one corner shifts it "
                    "against the conv output by 2 px.",
                    lambda x, c1, n1, c2, n2: x[..., :-4, :-4] + _body(x, c1, n1, c2, n2)),
    "corner_crop_other": ("crop the shortcut at the centre, x[..., 2:-2, 2:-2]; cropping 4 px from one corner "
                          "shifts it against the conv output by 2 px.",
                          lambda x, c1, n1, c2, n2: x[..., 4:, 4:] + _body(x, c1, n1, c2, n2)),
    "no_crop": ("the two unpadded 3x3 convs trim 2 px per side, so x is 4 px larger than the body's output: "
                "centre-crop the shortcut, x[..., 2:-2, 2:-2], before adding.",
                lambda x, c1, n1, c2, n2: x + _body(x, c1, n1, c2, n2)),
    "no_inner_relu": ("the ReLU between the two convs is missing: conv -> norm -> ReLU -> conv -> norm.",
                      lambda x, c1, n1, c2, n2: x[..., 2:-2, 2:-2] + n2(c2(n1(c1(x))))),
    "relu_before_norm": ("the order inside is conv -> norm -> ReLU (you applied the ReLU before the norm).",
                         lambda x, c1, n1, c2, n2: x[..., 2:-2, 2:-2] + n2(c2(n1(F.relu(c1(x)))))),
    "no_norm": ("the norm layers are missing: conv -> norm -> ReLU -> conv -> norm, then add the shortcut.",
                lambda x, c1, n1, c2, n2: x[..., 2:-2, 2:-2] + c2(F.relu(c1(x)))),
}
ERROR_SIGNS["no_crop"] = ("must match the size of tensor", "The size of tensor a")


def _residual_cases() -> list[tuple]:
    cases = []
    for seed, (c, h, w) in enumerate([(4, 10, 10), (6, 9, 12), (3, 32, 32)]):
        torch.manual_seed(100 + seed)
        block = blocks.ResidualBlock(c, norm="batch", padding="none").double()
        for m in block.modules():  # non-trivial norm statistics, so a missing norm shows
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.5, 0.5)
        block.eval().requires_grad_(False)
        x = (photo()[None].double() * 2 - 1) if c == 3 else torch.randn(2, c, h, w, generator=seeded(seed + 50),
                                                                           dtype=torch.float64)
        cases.append((x, *_block_parts(block)))
    return cases


def _residual_ref(x, c1, n1, c2, n2):
    with torch.no_grad():
        return reference_residual_forward(x, c1, n1, c2, n2)


def check_residual_block(fn: Callable | None, verbose: bool = True) -> CheckResult:
    """Check ``fn(x, conv1, norm1, conv2, norm2) -> y``: the paper's residual block with unpadded 3x3 convs
    (output 4 px smaller than ``x``), compared with :class:`perceptual_utils.blocks.ResidualBlock`."""
    cases = _residual_cases()
    # the reference *is* the package's ResidualBlock: check that once, so the exercise and the package agree
    x, c1, n1, c2, n2 = cases[0]
    block = blocks.ResidualBlock(x.shape[1], norm="batch", padding="none").double().eval()
    block.body[0][0], block.body[0][1], block.body[1][0], block.body[1][1] = c1, n1, c2, n2
    with torch.no_grad():
        assert torch.allclose(block(x), _residual_ref(*cases[0]))

    def student(*case):
        with torch.no_grad():
            return call_student(fn, *case)

    return run_check("residual_block", None if fn is None else student, _residual_ref, cases, RESIDUAL_MISTAKES,
                     tensor_compare,
                     f"{len(cases)} inputs (random features with 4 and 6 channels, a photo through a 3-channel "
                     "block), same as blocks.ResidualBlock",
                     explain=lambda g, w, c: factor_hint(g, w, "the block's output"), verbose=verbose,
                     use=reference_residual_forward)


register(7, "residual_block", check_residual_block, reference_residual_forward)
