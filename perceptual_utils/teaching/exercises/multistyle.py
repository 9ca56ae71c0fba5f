"""Notebook 06's exercise 11: conditional instance norm with a mix of styles (Dumoulin et al. 2017), the layer
that lets one network hold many styles (:class:`perceptual_utils.blocks.ConditionalInstanceNorm2d`)."""
from __future__ import annotations

from collections.abc import Callable

import torch

from .checking import CheckResult, as_tensor, register, run_check, tensors_close
from .inputs import painting, photo, seeded


# ----------------------------------------------------------------------------- 11. conditional instance norm

def reference_conditional_instance_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                                        mix: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Conditional instance norm with a mix of styles (Dumoulin et al. 2017): each image and channel
    normalised with its own spatial mean and (biased) variance, then scaled and shifted by the
    mix-weighted per-style parameters: ``w = mix / sum(mix)``, ``gamma_w = w @ gamma``,
    ``beta_w = w @ beta``, ``y = gamma_w * (x - mu) / sqrt(var + eps) + beta_w``.

    ``x``: ``(B, C, H, W)``; ``gamma``, ``beta``: ``(N, C)`` (one row per style); ``mix``: ``(N,)``.
    """
    w = mix / mix.sum()
    g, b = w @ gamma, w @ beta                                            # (C,), (C,)
    mu = x.mean(dim=(2, 3), keepdim=True)                                 # per image, per channel
    var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
    return g[None, :, None, None] * (x - mu) / torch.sqrt(var + eps) + b[None, :, None, None]


def _cin_with(dims=(2, 3), unbiased=False, normalise=True, swap=False, eps=1e-5, sqrt=True):
    def run(x, gamma, beta, mix):
        w = mix / mix.sum() if normalise else mix
        g, b = w @ gamma, w @ beta
        if swap:
            g, b = b, g
        mu = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, keepdim=True, unbiased=unbiased)
        scale = torch.sqrt(var + eps) if sqrt else var + eps
        return g[None, :, None, None] * (x - mu) / scale + b[None, :, None, None]
    return run


CIN_MISTAKES: dict[str, tuple[str, Callable]] = {
    "batch_stats": ("you took the mean and variance over the batch too (dims 0, 2, 3: that is batch norm); "
                    "instance norm uses each image's own statistics, over H and W only (dims 2, 3).",
                    _cin_with(dims=(0, 2, 3))),
    "layer_stats": ("you took the mean and variance over the channels too (dims 1, 2, 3: layer norm); "
                    "instance norm keeps one mean and variance per channel, over H and W only (dims 2, 3).",
                    _cin_with(dims=(1, 2, 3))),
    "unnormalised_mix": ("the mixing weights must be normalised to sum to 1 (w = mix / mix.sum()) before "
                         "mixing gamma and beta; otherwise [2, 1] is not the same mix as [2/3, 1/3].",
                         _cin_with(normalise=False)),
    "swapped": ("gamma and beta are swapped: gamma (the scale) multiplies the normalised x, beta (the shift) "
                "is added.", _cin_with(swap=True)),
    "unbiased": ("close: use the biased variance (unbiased=False, divide by H*W), as instance norm does.",
                 _cin_with(unbiased=True)),
    "no_sqrt": ("divide by the standard deviation sqrt(var + eps), not by the variance.", _cin_with(sqrt=False)),
    "no_eps": ("add eps (1e-5) to the variance before the square root: a flat channel (variance 0) must not "
               "divide by zero.", _cin_with(eps=0.0)),
}


def _cin_cases() -> list[tuple[torch.Tensor, ...]]:
    g = seeded(90)
    n, c = 4, 3
    gamma = 1 + 0.5 * torch.randn(n, c, generator=g, dtype=torch.float64)
    beta = 0.3 * torch.randn(n, c, generator=g, dtype=torch.float64)
    x1 = torch.randn(2, c, 4, 5, generator=g, dtype=torch.float64) * 2 + 1
    x2 = torch.randn(3, c, 6, 6, generator=g, dtype=torch.float64)
    x2[1, 2] = 0.25                                                       # a flat channel: variance 0
    images = torch.stack([photo(), painting()]).double()                # real images as activations
    one_hot = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    return [(x1, gamma, beta, one_hot),
            (x1, gamma, beta, torch.tensor([2.0, 1.0, 0.0, 1.0], dtype=torch.float64)),
            (x2, gamma, beta, torch.tensor([0.7, 0.0, 0.3, 0.0], dtype=torch.float64)),
            (images, gamma, beta, torch.tensor([0.25, 0.25, 0.25, 0.25], dtype=torch.float64))]


def _cin_compare(got, want) -> bool:
    g, w = as_tensor(got), as_tensor(want)
    return g.shape == w.shape and bool(torch.isfinite(g).all()) and tensors_close(g, w, rtol=1e-4, atol=1e-6)


def _cin_explain(got, want, case):
    g = as_tensor(got)
    if g.shape != want.shape:
        return (f"the output has shape {tuple(g.shape)}; it should be the input's, {tuple(want.shape)}.", "shape")
    if not bool(torch.isfinite(g).all()):
        return CIN_MISTAKES["no_eps"][0], "no_eps"
    return None


def check_conditional_instance_norm(fn: Callable | None, verbose: bool = True) -> CheckResult:
    """Check ``fn(x, gamma, beta, mix) -> y`` (see :func:`reference_conditional_instance_norm`):
    ``x`` ``(B, C, H, W)``, ``gamma`` and ``beta`` ``(N, C)`` per style, ``mix`` ``(N,)`` non-negative weights."""
    cases = _cin_cases()
    return run_check("conditional_instance_norm", fn, reference_conditional_instance_norm, cases, CIN_MISTAKES,
                     _cin_compare, f"{len(cases)} inputs (a one-hot style, unnormalised and partial mixes, a flat "
                     "channel, a photo and a painting as activations)", explain=_cin_explain, verbose=verbose)


register(11, "conditional_instance_norm", check_conditional_instance_norm, reference_conditional_instance_norm, """
        def conditional_instance_norm(x, gamma, beta, mix):
            w = mix / mix.sum()                                          # convex weights over the styles
            g, b = w @ gamma, w @ beta                                   # one scale and shift per channel
            mu = x.mean(dim=(2, 3), keepdim=True)                        # per image and channel
            var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
            return g[None, :, None, None] * (x - mu) / (var + 1e-5).sqrt() + b[None, :, None, None]
    """)
