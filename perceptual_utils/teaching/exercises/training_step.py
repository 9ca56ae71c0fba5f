"""Notebook 04's exercise 8: one training step of the style network (Eq. 1 on a batch, backward, one
optimiser update), and :class:`LossPieces`, what the step needs besides the model and the optimiser."""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ... import blocks, losses
from ...vgg.cache import get_loss_network
from .checking import ERROR_SIGNS, CheckResult, register
from .inputs import painting, photo


# ----------------------------------------------------------------------------- 8. training step

@dataclass
class LossPieces:
    """What one training step of the style network needs besides the model and the optimiser.

    ``loss_network(images)`` returns ``{layer: features}`` for :attr:`content_layer` and :attr:`style_layers`;
    ``style_grams`` are the style image's Gram matrices (``(1, C, C)`` per style layer), computed once.
    Eq. 1 of the paper with these weights: ``lambda_c l_feat + lambda_s l_style + lambda_TV l_TV``.
    """

    loss_network: nn.Module
    style_grams: dict[str, torch.Tensor]
    content_layer: str = "relu2_2"
    style_layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
    content_weight: float = 1.0
    style_weight: float = 5.0
    tv_weight: float = 1.0


def make_loss_pieces(style_image: torch.Tensor, loss_network: nn.Module | None = None,
                     content_weight: float = 1.0, style_weight: float = 5.0, tv_weight: float = 1.0,
                     content_layer: str = "relu2_2",
                     style_layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")) -> LossPieces:
    """:class:`LossPieces` for a style image ``(3, H, W)``: the style's Gram matrices, computed once."""
    style_layers = tuple(style_layers)
    if loss_network is None:
        loss_network = get_loss_network(list(dict.fromkeys([content_layer, *style_layers])))
    device = next(loss_network.buffers()).device
    with torch.no_grad():
        feats = loss_network(style_image.to(device)[None] if style_image.dim() == 3 else style_image.to(device))
    grams = {j: losses.gram_matrix(feats[j]) for j in style_layers}
    return LossPieces(loss_network, grams, content_layer, style_layers, content_weight, style_weight, tv_weight)


def reference_training_step(model: nn.Module, optimizer: torch.optim.Optimizer, pieces: LossPieces,
                            batch: torch.Tensor) -> dict[str, float]:
    """One step of Eq. 1 on a batch of content photos ``x`` (the target ``y_c`` is ``x`` itself):
    ``y_hat = f_W(x)``, ``loss = lambda_c l_feat(y_hat, x) + lambda_s l_style(y_hat, y_s) + lambda_TV l_TV(y_hat)``,
    backward, one optimiser update. Returns the weighted terms and the total as floats."""
    optimizer.zero_grad()
    y_hat = model(batch)                                       # f_W(x)
    feats = pieces.loss_network(y_hat)                         # phi(y_hat): every layer in one pass
    with torch.no_grad():                                      # the content target phi_j(y_c), y_c = x
        target = pieces.loss_network(batch)[pieces.content_layer]
    content = pieces.content_weight * losses.feature_reconstruction_loss(feats[pieces.content_layer], target)
    style = pieces.style_weight * losses.style_reconstruction_loss(feats, pieces.style_grams)
    tv = pieces.tv_weight * losses.total_variation_loss(y_hat)
    total = content + style + tv                               # Eq. 1 for this batch
    total.backward()                                           # dLoss/dW (VGG-16 stays frozen)
    optimizer.step()                                           # W <- W - update
    return {"content": content.item(), "style": style.item(), "tv": tv.item(), "total": total.item()}


def _step_variant(zero_grad=True, step=True, weighted=True, content_from="batch", tv=True):
    def run(model, optimizer, pieces, batch):
        if zero_grad:
            optimizer.zero_grad()
        y_hat = model(batch)
        feats = pieces.loss_network(y_hat)
        with torch.no_grad():
            src = batch if content_from == "batch" else y_hat
            target = pieces.loss_network(src)[pieces.content_layer]
        wc, ws, wt = (pieces.content_weight, pieces.style_weight, pieces.tv_weight) if weighted else (1, 1, 1)
        content = wc * losses.feature_reconstruction_loss(feats[pieces.content_layer], target)
        style = ws * losses.style_reconstruction_loss(feats, pieces.style_grams)
        total = content + style + (wt * losses.total_variation_loss(y_hat) if tv else 0)
        total.backward()
        if step:
            optimizer.step()
        return {"total": total.item()}
    return run


TRAINING_MISTAKES: dict[str, tuple[str, Callable]] = {
    "no_zero_grad": ("gradients pile up from step to step: call optimizer.zero_grad() before backward().",
                     _step_variant(zero_grad=False)),
    "no_step": ("the weights never change: call optimizer.step() after backward().", _step_variant(step=False)),
    "content_from_output": ("the content target is phi_j of the input photo x (y_c = x), computed without "
                            "gradient; you took it from the output y_hat, so the content term is always 0.",
                            _step_variant(content_from="output")),
    "unweighted": ("the terms are not weighted: total = lambda_c l_feat + lambda_s l_style + lambda_TV l_TV "
                   "(pieces.content_weight, .style_weight, .tv_weight).", _step_variant(weighted=False)),
    "no_tv": ("the total-variation term is missing: add pieces.tv_weight * l_TV(y_hat).", _step_variant(tv=False)),
}
ERROR_SIGNS["detached"] = ("does not require grad", "does not have a grad_fn")


class _TinyNet(nn.Sequential):
    """A two-conv stand-in for the style network (the checker needs a model, not a good one)."""

    def __init__(self):
        super().__init__(nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
                         nn.Conv2d(8, 3, 3, padding=1, padding_mode="reflect"), blocks.ScaledTanh())


def _training_setup(seed: int):
    net = get_loss_network(["relu1_2", "relu2_2"], device="cpu")
    torch.manual_seed(seed)
    model = _TinyNet()
    style = painting()
    pieces = make_loss_pieces(style, net, content_weight=1.0, style_weight=5.0, tv_weight=10.0,
                              style_layers=("relu1_2", "relu2_2"))
    content = photo()
    batch = torch.stack([content, content.flip(-1)])[..., :24, :24].contiguous()
    return model, pieces, batch


def _run_steps(fn, seed: int, n: int = 2):
    model, pieces, batch = _training_setup(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    before = [p.detach().clone() for p in model.parameters()]
    outs = []
    for k in range(n):
        outs.append(fn(model, optimizer, pieces, batch if k % 2 == 0 else batch.flip(-2)))
    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    moved = any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    return outs, params, moved


def _total_of(out) -> float | None:
    if isinstance(out, Mapping):
        out = out.get("total")
    if out is None:
        return None
    return float(out.detach() if isinstance(out, torch.Tensor) else out)


def check_training_step(fn: Callable | None, verbose: bool = True) -> CheckResult:
    """Check ``fn(model, optimizer, pieces, batch) -> {"total": float, ...}``: one training step of the style
    network (Eq. 1 on one batch, backward, one optimiser update; ``pieces`` is a :class:`LossPieces`).

    Runs two steps on a tiny model and real VGG-16 features and compares the parameters after each
    step and the returned total with :func:`reference_training_step`."""
    name = "training_step"
    result = CheckResult(name, attempted=True, passed=False, fn=reference_training_step)

    def finish(hint=None, key=None, details=()):
        result.hint, result.mistake, result.details = hint or "", key, list(details)
        if verbose:
            print(result.report())
        return result

    if fn is None:
        result.attempted = False
        return finish()
    want_outs, want_params, _ = _run_steps(reference_training_step, 0)
    try:
        outs, params, moved = _run_steps(fn, 0)
    except NotImplementedError:
        result.attempted = False
        return finish()
    except Exception as exc:
        if any(s in str(exc) for s in ERROR_SIGNS["detached"]):
            return finish("the loss has no gradient: do not detach y_hat or wrap the model call in torch.no_grad(); "
                          "only the content target phi(x) is computed without gradient.", "detached",
                          [f"{type(exc).__name__}: {exc}"])
        return finish(f"your function raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                      None, [f"{type(exc).__name__}: {exc}"])
    totals = [_total_of(o) for o in outs]
    if totals[0] is None and not moved:
        result.attempted = False
        return finish()
    want_totals = [_total_of(o) for o in want_outs]
    same_params = torch.allclose(params, want_params, rtol=1e-4, atol=1e-6)
    if totals[0] is None:
        if same_params:
            return finish('the step is right but returns nothing: return the losses, e.g. {"total": total.item()}.',
                          "no_return")
    elif same_params and all(math.isclose(t, w, rel_tol=1e-4, abs_tol=1e-6) for t, w in zip(totals, want_totals)):
        result.passed, result.fn = True, fn
        return finish(details=["two steps on a tiny model with VGG-16 relu1_2/relu2_2: same weights and losses "
                               "as the reference after each step"])
    for key, (hint, wrong) in TRAINING_MISTAKES.items():
        w_outs, w_params, _ = _run_steps(wrong, 0)
        if torch.allclose(params, w_params, rtol=1e-4, atol=1e-6):
            return finish(hint, key, [f"totals {totals}, expected {want_totals}"])
    if same_params:
        return finish("the weights are updated correctly, but the returned total differs: return the total of "
                      "the weighted terms (before the update).", "wrong_return",
                      [f"totals {totals}, expected {want_totals}"])
    return finish("after the step the weights differ from the reference's: check Eq. 1 (targets, weights, "
                  "zero_grad -> forward -> loss -> backward -> step).", None,
                  [f"totals {totals}, expected {want_totals}"])


register(8, "training_step", check_training_step, reference_training_step)
