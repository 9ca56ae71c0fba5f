"""Self-checks for the workbook's exercises.

A notebook asks the student to write one piece of the paper (a loss, the Gram matrix, a residual
block's forward, a training step, PSNR on Y, the SR degradation) and then calls a checker::

    def my_gram(features):
        raise NotImplementedError   # your code here

    gram = exercises.check_gram_matrix(my_gram)

The checker runs the student's function and the package's reference on random inputs and on real
ones (VGG-16 features of a photo, a real HR image), prints a short report and returns a
:class:`CheckResult`. The result is callable: it calls the student's function when it passed and
the reference otherwise, so the notebook goes on either way. A function that is ``None``, raises
``NotImplementedError`` or returns ``None`` is "not attempted": the checker says so and hands back
the reference.

When the answer is wrong, the checker compares it with a catalogue of typical mistakes (each one
written out as code here: a missing square, a transposed Gram matrix, RGB instead of Y, ...) and
names the one that matches (:attr:`CheckResult.mistake`, :attr:`CheckResult.hint`). Otherwise it
falls back to what it can see: a wrong shape, a constant factor, a constant offset.

Solutions live apart from the exercises: :func:`solution` prints one (the reference's source and a
short written-out answer), so a stuck student can look without the answer being on the page.
"""
from __future__ import annotations

import functools
import inspect
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .. import blocks, losses
from ..color import rgb_to_y_bt601
from ..config import data_root
from ..datafiles import example_image
from ..images import center_crop, load_image
from ..sr import degradation, metrics
from ..vgg.cache import get_loss_network

__all__ = [
    "CheckResult", "LossPieces", "EXERCISES", "solution", "reference_training_step", "reference_residual_forward",
    "reference_psnr_y", "reference_degrade", "make_loss_pieces",
    "check_feature_loss", "check_gram_matrix", "check_style_loss", "check_total_variation",
    "check_residual_block", "check_training_step", "check_psnr_y", "check_degradation",
    "reference_conditional_instance_norm", "check_conditional_instance_norm",
]

NOT_ATTEMPTED = "not attempted, using the reference"


# ----------------------------------------------------------------------------- the result

@dataclass
class CheckResult:
    """What a checker found.

    Attributes:
        name: the exercise.
        attempted: ``False`` when the function was ``None``, raised ``NotImplementedError`` or returned ``None``.
        passed: the function agrees with the reference on every test input.
        mistake: key of the typical mistake recognised (``None`` if passed or not recognised).
        hint: what to fix (empty when passed).
        details: what was compared (for the report).
        fn: the function to use from now on (the student's if it passed, else the reference).

    Calling the result calls :attr:`fn`, so ``gram = check_gram_matrix(my_gram)`` can be used as
    the Gram matrix in later cells.
    """

    name: str
    attempted: bool
    passed: bool
    fn: Callable
    mistake: str | None = None
    hint: str = ""
    details: list[str] = field(default_factory=list)

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    @property
    def status(self) -> str:
        if not self.attempted:
            return "not attempted"
        return "passed" if self.passed else "not yet"

    def report(self) -> str:
        if not self.attempted:
            return f"[{self.name}] {NOT_ATTEMPTED} (write your function and run the cell again)."
        if self.passed:
            return f"[{self.name}] correct: {'; '.join(self.details)}. Your function is used from here on."
        lines = [f"[{self.name}] not yet: {self.hint}"]
        lines += [f"    {d}" for d in self.details]
        lines.append("    The reference is used from here on, so the notebook goes on; fix your function and "
                     f"run the cell again (stuck? exercises.solution({self.name!r})).")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"CheckResult({self.name!r}, {self.status}{', ' + self.mistake if self.mistake else ''})"


class _NotAttempted(Exception):
    pass


class _Mismatch(Exception):
    """The student's function failed on one input: ``key`` names the mistake if recognised."""

    def __init__(self, hint: str, key: str | None = None, details: Sequence[str] = ()):
        super().__init__(hint)
        self.hint, self.key, self.details = hint, key, list(details)


def _call(fn: Callable, *args):
    """Call the student's function; ``None`` results and ``NotImplementedError`` mean not attempted."""
    try:
        out = fn(*args)
    except NotImplementedError:
        raise _NotAttempted from None
    if out is None:
        raise _NotAttempted
    return out


def _as_tensor(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().double()
    return torch.as_tensor(x, dtype=torch.float64)


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=rtol, atol=atol))


def _fmt(t: torch.Tensor) -> str:
    if t.numel() == 1:
        return f"{float(t):.6g}"
    return f"tensor of shape {tuple(t.shape)}"


def _run_check(name: str, student: Callable | None, reference: Callable, cases: Sequence[tuple],
               mistakes: Mapping[str, tuple[str, Callable]], compare: Callable, describe: str,
               explain: Callable | None = None, verbose: bool = True, use: Callable | None = None) -> CheckResult:
    """Compare ``student(*case)`` with ``reference(*case)`` on every case.

    ``mistakes``: key -> (hint, wrong implementation). ``compare(got, want) -> bool``.
    ``explain(got, want, case) -> (hint, key) | None``: generic diagnosis when no mistake matches.
    ``use``: what the result hands back when the student's function is not used (default ``reference``).
    """
    result = CheckResult(name, attempted=True, passed=False, fn=use or reference)
    try:
        if student is None:
            raise _NotAttempted
        got_all = []
        for case in cases:  # run every case first, so a mistake is recognised on all of them
            try:
                got_all.append(_call(student, *case))
            except _NotAttempted:
                raise
            except Exception as exc:  # an error on the student's side: name it, maybe recognise it
                hint = _hint_for_error(exc, mistakes)
                raise _Mismatch(hint[0], hint[1], [f"{type(exc).__name__}: {exc}"]) from None
        for got, case in zip(got_all, cases):
            want = reference(*case)
            if not compare(got, want):
                key, hint = _recognise(got_all, cases, mistakes, compare)
                details = [f"got {_describe(got)}, expected {_describe(want)}{_difference(got, want)}"]
                if key is None and explain is not None:
                    found = explain(got, want, case)
                    if found is not None:
                        hint, key = found
                if hint is None:
                    hint = "the result differs from the reference (see below)."
                raise _Mismatch(hint, key, details)
        result.passed, result.fn = True, student
        result.details = [describe]
    except _NotAttempted:
        result.attempted = False
    except _Mismatch as m:
        result.hint, result.mistake, result.details = m.hint, m.key, m.details
    if verbose:
        print(result.report())
    return result


def _difference(got, want) -> str:
    try:
        g, w = _as_tensor(got), _as_tensor(want)
    except (TypeError, ValueError, RuntimeError):
        return ""
    if g.shape == w.shape and g.numel() > 1:
        return f" (largest difference {float((g - w).abs().max()):.3g})"
    return ""


def _describe(x) -> str:
    if isinstance(x, Mapping):
        return "{" + ", ".join(f"{k}: {_describe(v)}" for k, v in x.items()) + "}"
    if isinstance(x, (torch.Tensor, float, int)):
        return _fmt(_as_tensor(x))
    return repr(x)


def _recognise(got_all: Sequence, cases: Sequence[tuple], mistakes: Mapping[str, tuple[str, Callable]],
               compare: Callable) -> tuple[str | None, str | None]:
    """The first typical mistake whose output equals the student's on every case tried so far."""
    for key, (hint, wrong) in mistakes.items():
        try:
            if all(compare(got, wrong(*case)) for got, case in zip(got_all, cases)):
                return key, hint
        except Exception:  # a wrong implementation that cannot run on this input does not match
            continue
    return None, None


#: Error-message fragments that point at a mistake, per mistake key (checked by _hint_for_error).
_ERROR_SIGNS: dict[str, tuple[str, ...]] = {}


def _hint_for_error(exc: Exception, mistakes: Mapping[str, tuple[str, Callable]]) -> tuple[str, str | None]:
    msg = str(exc)
    for key, signs in _ERROR_SIGNS.items():
        if key in mistakes and any(s in msg for s in signs):
            return mistakes[key][0], key
    return f"your function raised {type(exc).__name__}: {msg.splitlines()[0] if msg else ''}", None


def _factor_hint(got, want, what: str) -> tuple[str, str] | None:
    """Generic: the same shape but off by a constant factor -> a normalisation hint."""
    g, w = _as_tensor(got), _as_tensor(want)
    if g.shape != w.shape:
        return (f"the output has shape {tuple(g.shape)}, the reference {tuple(w.shape)}.", "shape")
    nz = w.abs() > 1e-12
    if nz.any():
        ratio = g[nz] / w[nz]
        r = float(ratio.mean())
        if r > 0 and float((ratio - r).abs().max()) < 1e-4 * abs(r) and abs(r - 1) > 1e-3:
            return (f"off by a constant factor {r:.4g}: check the normalisation ({what}).", "factor")
    return None


# ----------------------------------------------------------------------------- test inputs

@functools.lru_cache(maxsize=1)
def _photo(size: int = 32) -> torch.Tensor:
    """A real photo (the data root's chicago.jpg, else scikit-image's astronaut), square ``size`` px."""
    return example_image(kind="content", name="chicago.jpg", size=size)[0]


@functools.lru_cache(maxsize=1)
def _painting(size: int = 32) -> torch.Tensor:
    return example_image(kind="styles", name="starry_night_crop.jpg", size=size)[0]


@functools.lru_cache(maxsize=1)
def _real_features() -> dict[str, dict[str, torch.Tensor]] | None:
    """VGG-16 features of a real photo and a painting at the style layers (None without weights)."""
    try:
        net = get_loss_network(list(losses.STYLE_LAYERS), device="cpu")
    except Exception:  # no weights: the checks run on random inputs only
        return None
    with torch.no_grad():
        return {"photo": net(_photo()[None]), "painting": net(_painting()[None])}


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rand(*shape, seed: int, relu: bool = True) -> torch.Tensor:
    x = torch.randn(*shape, generator=_seeded(seed), dtype=torch.float64)
    return x.clamp_min(0) if relu else x


# ----------------------------------------------------------------------------- 1. feature loss

def _feat_ref(f, t):
    return losses.feature_reconstruction_loss(f.double(), t.double())


FEATURE_MISTAKES: dict[str, tuple[str, Callable]] = {
    "no_square": ("you averaged |difference|; the loss squares the difference: ||phi(y_hat) - phi(y)||_2^2.",
                  lambda f, t: (f - t).abs().mean()),
    "not_squared_norm": ("you used the norm ||.||_2 itself; the loss uses its square ||.||_2^2 (torch.sum of the "
                         "squared differences, or .pow(2)).",
                         lambda f, t: torch.stack([(a - b).norm() for a, b in zip(f, t)]).mean() / f[0].numel()),
    "plain_norm": ("you returned the plain norm ||phi(y_hat) - phi(y)||_2: square it and divide by C_j H_j W_j.",
                   lambda f, t: (f - t).norm()),
    "no_normalisation": ("you summed the squared differences without dividing by C_j H_j W_j (and averaging over "
                         "the batch); the paper normalises so layers of different size are comparable.",
                         lambda f, t: (f - t).pow(2).sum()),
    "batch_sum": ("you summed over the batch; the loss is the mean over the batch of the per-image loss.",
                  lambda f, t: (f - t).pow(2).sum() / f[0].numel()),
    "hw_only": ("you divided by H_j W_j only; divide by C_j H_j W_j (the channels too).",
                lambda f, t: (f - t).pow(2).sum() / (f.shape[0] * f.shape[2] * f.shape[3])),
    "c_only": ("you divided by C_j only; divide by C_j H_j W_j (the spatial size too).",
               lambda f, t: (f - t).pow(2).sum() / (f.shape[0] * f.shape[1])),
}


def _loss_cases() -> list[tuple[torch.Tensor, torch.Tensor]]:
    cases = [(_rand(2, 4, 5, 6, seed=1), _rand(2, 4, 5, 6, seed=2)),
             (_rand(3, 6, 3, 7, seed=3, relu=False), _rand(3, 6, 3, 7, seed=4, relu=False)),
             (_rand(1, 8, 4, 4, seed=5), _rand(1, 8, 4, 4, seed=6))]
    real = _real_features()
    if real is not None:
        cases.append((real["photo"]["relu2_2"].double(), real["painting"]["relu2_2"].double()))
    return cases


def _scalar_compare(got, want) -> bool:
    g = _as_tensor(got)
    return g.numel() == 1 and _close(g.reshape(()), _as_tensor(want).reshape(()))


def check_feature_loss(fn: Callable | None, verbose: bool = True) -> CheckResult:
    """Check ``fn(features, target) -> scalar``: the feature reconstruction loss
    ``||phi_j(y_hat) - phi_j(y)||_2^2 / (C_j H_j W_j)``, averaged over the batch, for ``(B, C, H, W)``
    features (reference: :func:`perceptual_utils.losses.feature_reconstruction_loss`)."""
    cases = _loss_cases()
    return _run_check("feature_loss", fn, _feat_ref, cases, FEATURE_MISTAKES, _scalar_compare,
                      f"{len(cases)} inputs (random features of 3 shapes"
                      f"{', VGG-16 relu2_2 of a photo and a painting' if len(cases) > 3 else ''})",
                      explain=lambda g, w, c: _factor_hint(g, w, "divide by C_j H_j W_j, mean over the batch"),
                      verbose=verbose, use=losses.feature_reconstruction_loss)


# ----------------------------------------------------------------------------- 2. Gram matrix

def _psi(f):
    b, c, h, w = f.shape
    return f.reshape(b, c, h * w)


GRAM_MISTAKES: dict[str, tuple[str, Callable]] = {
    "transposed": ("you computed psi^T psi (an HW x HW matrix); the Gram matrix is psi psi^T, C_j x C_j: "
                   "psi @ psi.transpose(1, 2).",
                   lambda f: _psi(f).transpose(1, 2) @ _psi(f) / f[0].numel()),
    "wrong_reshape": ("wrong reshape: reshape(B, H*W, C) does not put channels last, it scrambles them. Reshape "
                      "to (B, C, H*W) (or permute(0, 2, 3, 1) before reshaping to (B, H*W, C)).",
                      lambda f: (lambda p: p.transpose(1, 2) @ p)(f.reshape(f.shape[0], -1, f.shape[1]))
                      / f[0].numel()),
    "no_normalisation": ("you did not normalise: divide psi psi^T by C_j H_j W_j.",
                         lambda f: _psi(f) @ _psi(f).transpose(1, 2)),
    "hw_only": ("you divided by H_j W_j only; the paper divides by C_j H_j W_j.",
                lambda f: _psi(f) @ _psi(f).transpose(1, 2) / (f.shape[2] * f.shape[3])),
    "centred": ("you subtracted the mean (a covariance); the Gram matrix uses the raw activations.",
                lambda f: (lambda p: p @ p.transpose(1, 2))(_psi(f) - _psi(f).mean(2, keepdim=True))
                / f[0].numel()),
    "no_batch": ("keep the batch dimension: input (B, C, H, W), output (B, C, C) (torch.bmm or @ on "
                 "(B, C, HW) tensors).",
                 lambda f: _psi(f)[0] @ _psi(f)[0].T / f[0].numel()),
}


def _gram_ref(f):
    return losses.gram_matrix(f.double()).double()


def _tensor_compare(got, want, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    return _close(_as_tensor(got), _as_tensor(want), rtol, atol)


def _gram_explain(got, want, case):
    g, w = _as_tensor(got), _as_tensor(want)
    f = case[0]
    if g.shape == (f.shape[0], f.shape[2] * f.shape[3], f.shape[2] * f.shape[3]):
        return GRAM_MISTAKES["transposed"][0], "transposed"
    if g.shape == w.shape and not torch.allclose(g, g.transpose(-1, -2), atol=1e-6):
        return "the result is not symmetric: a Gram matrix psi psi^T always is.", "not_symmetric"
    return _factor_hint(got, want, "divide psi psi^T by C_j H_j W_j")


def _gram_cases() -> list[tuple[torch.Tensor]]:
    cases = [(_rand(2, 3, 4, 5, seed=11),), (_rand(1, 5, 2, 3, seed=12),), (_rand(3, 4, 3, 3, seed=13, relu=False),)]
    real = _real_features()
    if real is not None:
        cases += [(real["photo"]["relu1_2"].double(),), (real["painting"]["relu3_3"].double(),)]
    return cases


def check_gram_matrix(fn: Callable | None, verbose: bool = True) -> CheckResult:
    """Check ``fn(features) -> grams``: ``(B, C, H, W) -> (B, C, C)``, ``G = psi psi^T / (C H W)``
    with ``psi`` the features reshaped to ``(B, C, H*W)`` (reference: :func:`perceptual_utils.losses.gram_matrix`)."""
    cases = _gram_cases()
    return _run_check("gram_matrix", fn, _gram_ref, cases, GRAM_MISTAKES, _tensor_compare,
                      f"{len(cases)} inputs (random features of 3 shapes"
                      f"{', VGG-16 relu1_2 of a photo, relu3_3 of a painting' if len(cases) > 3 else ''})",
                      explain=_gram_explain, verbose=verbose, use=losses.gram_matrix)


# ----------------------------------------------------------------------------- 3. style loss

def _layer_terms(features, grams, per: Callable, gram: Callable = _gram_ref):
    return [per(gram(features[j].double()), grams[j].double()) for j in grams]


STYLE_MISTAKES: dict[str, tuple[str, Callable]] = {
    "no_square": ("you summed |G(y_hat) - G(y_s)|; the loss uses squared differences (the squared Frobenius norm).",
                  lambda f, g: sum(_layer_terms(f, g, lambda a, b: (a - b).abs().sum((1, 2)).mean()))),
    "not_squared_norm": ("you used the Frobenius norm itself; the loss uses its square ||G(y_hat) - G(y_s)||_F^2.",
                         lambda f, g: sum(_layer_terms(f, g, lambda a, b: (a - b).flatten(1).norm(dim=1).mean()))),
    "mean_entries": ("you averaged over the C_j x C_j entries; the squared Frobenius norm sums them (the 1/(C H W) "
                     "is already inside the Gram matrix).",
                     lambda f, g: sum(_layer_terms(f, g, lambda a, b: (a - b).pow(2).mean((1, 2)).mean()))),
    "last_layer_only": ("only the last layer counts: the style loss is a sum over all style layers (accumulate "
                        "with +=, do not overwrite).",
                        lambda f, g: _layer_terms(f, g, lambda a, b: (a - b).pow(2).sum((1, 2)).mean())[-1]),
    "first_layer_only": ("only the first layer counts (a return inside the loop?): sum over all style layers.",
                         lambda f, g: _layer_terms(f, g, lambda a, b: (a - b).pow(2).sum((1, 2)).mean())[0]),
    "batch_sum": ("you summed over the batch; take the mean over the batch of each image's loss.",
                  lambda f, g: sum(_layer_terms(f, g, lambda a, b: (a - b).pow(2).sum()))),
    "gram_not_normalised": ("your Gram matrix of the output is not normalised: divide psi psi^T by C_j H_j W_j, "
                            "as the target Grams are.",
                            lambda f, g: sum(_layer_terms(f, g, lambda a, b: (a - b).pow(2).sum((1, 2)).mean(),
                                                          gram=lambda x: _psi(x) @ _psi(x).transpose(1, 2)))),
}


def _style_ref(f, g):
    return losses.style_reconstruction_loss({k: v.double() for k, v in f.items()},
                                            {k: v.double() for k, v in g.items()})


def _style_cases() -> list[tuple[dict, dict]]:
    def layer_set(seed, b, shapes):
        feats = {f"relu{i + 1}_2": _rand(b, *s, seed=seed + i) for i, s in enumerate(shapes)}
        targets = {k: _gram_ref(_rand(1, *s, seed=seed + 10 + i)) for i, (k, s) in enumerate(zip(feats, shapes))}
        return feats, targets

    cases = [layer_set(20, 2, [(3, 4, 4), (5, 2, 3)]), layer_set(40, 3, [(4, 3, 3), (2, 5, 5), (6, 2, 2)])]
    real = _real_features()
    if real is not None:
        targets = {k: _gram_ref(v) for k, v in real["painting"].items()}
        cases.append(({k: v.double() for k, v in real["photo"].items()}, targets))
    return cases


def check_style_loss(fn: Callable | None, verbose: bool = True) -> CheckResult:
    """Check ``fn(features, target_grams) -> scalar``: ``sum_j ||G_j(y_hat) - G_j(y_s)||_F^2`` averaged over the
    batch; ``features`` maps layer -> ``(B, C, H, W)``, ``target_grams`` layer -> ``(1, C, C)`` (reference:
    :func:`perceptual_utils.losses.style_reconstruction_loss`). Use your Gram matrix (or the package's) inside."""
    cases = _style_cases()
    return _run_check("style_loss", fn, _style_ref, cases, STYLE_MISTAKES, _scalar_compare,
                      f"{len(cases)} inputs (random features of 2 and 3 layers"
                      f"{', VGG-16 features of a photo against a painting' if len(cases) > 2 else ''})",
                      explain=lambda g, w, c: _factor_hint(g, w, "Frobenius norm squared, mean over the batch"),
                      verbose=verbose, use=losses.style_reconstruction_loss)


# ----------------------------------------------------------------------------- 4. total variation

def _dh(x):
    return x[:, :, 1:, :] - x[:, :, :-1, :]


def _dw(x):
    return x[:, :, :, 1:] - x[:, :, :, :-1]


TV_MISTAKES: dict[str, tuple[str, Callable]] = {
    "no_square": ("you used absolute differences (TV with beta = 1); our l_TV squares them: "
                  "mean (x[i+1,j] - x[i,j])^2 + mean (x[i,j+1] - x[i,j])^2.",
                  lambda x: _dh(x).abs().mean() + _dw(x).abs().mean()),
    "sum": ("you summed the squared differences; take the mean of each direction's (so l_TV does not grow with "
            "the image size).",
            lambda x: _dh(x).pow(2).sum() + _dw(x).pow(2).sum()),
    "one_direction": ("only one direction counts: add the vertical (dim 2) and horizontal (dim 3) differences.",
                      lambda x: _dh(x).pow(2).mean()),
    "other_direction": ("only one direction counts: add the vertical (dim 2) and horizontal (dim 3) differences.",
                        lambda x: _dw(x).pow(2).mean()),
    "channel_dim": ("you took differences along dim 1, the channels; the spatial dims of (B, C, H, W) are 2 (H) "
                    "and 3 (W).",
                    lambda x: (x[:, 1:] - x[:, :-1]).pow(2).mean() + _dh(x).pow(2).mean()),
    "isotropic": ("you used the isotropic form sqrt(dh^2 + dw^2); ours is the squared form (beta = 2): "
                  "mean dh^2 + mean dw^2.",
                  lambda x: (_dh(x)[:, :, :, :-1].pow(2) + _dw(x)[:, :, :-1, :].pow(2)).sqrt().mean()),
    "joint_mean": ("close: you averaged dh^2 + dw^2 over the common (H-1) x (W-1) grid; take the two means "
                   "separately, each over its own shape.",
                   lambda x: (_dh(x)[:, :, :, :-1].pow(2) + _dw(x)[:, :, :-1, :].pow(2)).mean()),
}


def _tv_ref(x):
    return losses.total_variation_loss(x.double())


def _tv_cases() -> list[tuple[torch.Tensor]]:
    cases = [(torch.rand(2, 3, 6, 7, generator=_seeded(30), dtype=torch.float64),),
             (torch.rand(1, 3, 9, 4, generator=_seeded(31), dtype=torch.float64),),
             (_photo()[None].double(),), (torch.stack([_photo(), _painting()]).double(),)]
    return cases


def check_total_variation(fn: Callable | None, verbose: bool = True) -> CheckResult:
    """Check ``fn(images) -> scalar``: ``mean (x[i+1,j] - x[i,j])^2 + mean (x[i,j+1] - x[i,j])^2`` over a
    ``(B, C, H, W)`` batch (reference: :func:`perceptual_utils.losses.total_variation_loss`)."""
    cases = _tv_cases()
    return _run_check("total_variation", fn, _tv_ref, cases, TV_MISTAKES, _scalar_compare,
                      f"{len(cases)} inputs (random images of 2 sizes, a photo, a photo + painting batch)",
                      explain=lambda g, w, c: _factor_hint(g, w, "a mean per direction"), verbose=verbose, use=losses.total_variation_loss)


# ----------------------------------------------------------------------------- 5. residual block

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
_ERROR_SIGNS["no_crop"] = ("must match the size of tensor", "The size of tensor a")


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
        x = (_photo()[None].double() * 2 - 1) if c == 3 else torch.randn(2, c, h, w, generator=_seeded(seed + 50),
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
            return _call(fn, *case)

    return _run_check("residual_block", None if fn is None else student, _residual_ref, cases, RESIDUAL_MISTAKES,
                      _tensor_compare,
                      f"{len(cases)} inputs (random features with 4 and 6 channels, a photo through a 3-channel "
                      "block), same as blocks.ResidualBlock",
                      explain=lambda g, w, c: _factor_hint(g, w, "the block's output"), verbose=verbose, use=reference_residual_forward)


# ----------------------------------------------------------------------------- 6. training step

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
_ERROR_SIGNS["detached"] = ("does not require grad", "does not have a grad_fn")


class _TinyNet(nn.Sequential):
    """A two-conv stand-in for the style network (the checker needs a model, not a good one)."""

    def __init__(self):
        super().__init__(nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
                         nn.Conv2d(8, 3, 3, padding=1, padding_mode="reflect"), blocks.ScaledTanh())


def _training_setup(seed: int):
    net = get_loss_network(["relu1_2", "relu2_2"], device="cpu")
    torch.manual_seed(seed)
    model = _TinyNet()
    style = _painting()
    pieces = make_loss_pieces(style, net, content_weight=1.0, style_weight=5.0, tv_weight=10.0,
                              style_layers=("relu1_2", "relu2_2"))
    photo = _photo()
    batch = torch.stack([photo, photo.flip(-1)])[..., :24, :24].contiguous()
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
        if any(s in str(exc) for s in _ERROR_SIGNS["detached"]):
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


# ----------------------------------------------------------------------------- 7. PSNR on Y

def reference_psnr_y(pred: torch.Tensor, target: torch.Tensor, scale: int) -> float:
    """PSNR in dB of the SR protocol: BT.601 luma Y (16-235 of 255), ``scale`` px shaved from every border,
    peak 255 (:func:`perceptual_utils.sr.metrics.psnr`)."""
    return float(metrics.psnr(pred, target, shave_border=scale, y_only=True))


def _mse_psnr(a, b, peak=255.0, log=math.log10, factor=10.0):
    mse = float((a.double() - b.double()).pow(2).mean())
    return factor * log(peak ** 2 / mse)


def _shaved(x, s):
    return metrics.shave(x, s) if s else x


PSNR_MISTAKES: dict[str, tuple[str, Callable]] = {
    "rgb": ("you measured on RGB; the SR protocol measures on the luma Y of BT.601 YCbCr "
            "(Y = 16 + 65.481 R + 128.553 G + 24.966 B for RGB in [0, 1]; color.rgb_to_y_bt601).",
            lambda p, t, s: _mse_psnr(_shaved(p, s) * 255, _shaved(t, s) * 255)),
    "no_shave": ("you did not shave the border: remove `scale` pixels from each side of both images first "
                 "(metrics.shave), as SRCNN's protocol does.",
                 lambda p, t, s: _mse_psnr(rgb_to_y_bt601(p), rgb_to_y_bt601(t))),
    "rgb_no_shave": ("two things: measure on Y (BT.601 luma), not RGB, and shave `scale` pixels from every border.",
                     lambda p, t, s: _mse_psnr(p * 255, t * 255)),
    "full_range_y": ("you used full-range luma (0.299 R + 0.587 G + 0.114 B over 0-255); the protocol's Y is "
                     "MATLAB's rgb2ycbcr, studio swing 16-235 (color.rgb_to_y_bt601), about 1.3 dB apart.",
                     lambda p, t, s: _mse_psnr(255 * (0.299 * _shaved(p, s)[0] + 0.587 * _shaved(p, s)[1]
                                                      + 0.114 * _shaved(p, s)[2]),
                                               255 * (0.299 * _shaved(t, s)[0] + 0.587 * _shaved(t, s)[1]
                                                      + 0.114 * _shaved(t, s)[2]))),
    "peak_mismatch": ("the peak does not match the pixel scale: Y is on 0-255, so the peak is 255 "
                      "(PSNR = 10 log10(255^2 / MSE)).",
                      lambda p, t, s: _mse_psnr(rgb_to_y_bt601(_shaved(p, s)), rgb_to_y_bt601(_shaved(t, s)),
                                                peak=1.0)),
    "natural_log": ("PSNR uses log10, not the natural log: 10 log10(255^2 / MSE).",
                    lambda p, t, s: _mse_psnr(rgb_to_y_bt601(_shaved(p, s)), rgb_to_y_bt601(_shaved(t, s)),
                                              log=math.log)),
    "sqrt_mse": ("20 log10 goes with peak / RMSE = peak / sqrt(MSE) (or 10 log10 with peak^2 / MSE); you used "
                 "the MSE itself.",
                 lambda p, t, s: 20 * math.log10(255.0 / float((rgb_to_y_bt601(_shaved(p, s)).double()
                                                                - rgb_to_y_bt601(_shaved(t, s)).double())
                                                               .pow(2).mean()))),
}


@functools.lru_cache(maxsize=1)
def _sr_images() -> list[tuple[torch.Tensor, int]]:
    """A real HR image (Set5's butterfly, else scikit-image's astronaut) cropped to 48 px, and its scale."""
    path = data_root() / "sr" / "Set5" / "butterfly.png"
    if path.is_file():
        hr = load_image(path)
    else:
        hr = example_image(kind="content", name="chicago.jpg", size=64)[0]
    return [(center_crop(hr, 48).contiguous(), 4), (center_crop(hr, 36).contiguous(), 3)]


def _psnr_cases() -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    cases = []
    for hr, s in _sr_images():
        sr = degradation.bicubic_upsample(degradation.evaluation_pair(hr, s)[0], s)
        cases.append((sr, hr, s))
    g = _seeded(60)
    a = torch.rand(3, 20, 24, generator=g)
    # a prediction with larger errors near the border, so the shave matters
    noise = 0.05 * torch.randn(3, 20, 24, generator=g)
    noise[:, :2] *= 6
    cases.append(((a + noise).clamp(0, 1), a, 2))
    b = torch.rand(3, 16, 16, generator=g)
    cases.append(((b * 0.8 + 0.1).clamp(0, 1), b, 4))
    return cases


def _float_compare(got, want, tol: float = 1e-3) -> bool:
    g = _as_tensor(got)
    return g.numel() == 1 and abs(float(g) - float(want)) <= tol


def _psnr_explain(got, want, case):
    g = _as_tensor(got)
    if g.numel() != 1:
        return f"return one number (dB) per image pair, got a tensor of shape {tuple(g.shape)}.", "shape"
    return None


def check_psnr_y(fn: Callable | None, verbose: bool = True) -> CheckResult:
    """Check ``fn(pred, target, scale) -> float``: PSNR in dB on the BT.601 luma Y (0-255 scale, peak 255) after
    shaving ``scale`` px from every border; images ``(3, H, W)`` RGB in [0, 1]
    (reference: :func:`perceptual_utils.sr.metrics.psnr` with ``shave_border=scale, y_only=True``)."""
    cases = _psnr_cases()
    return _run_check("psnr_y", fn, lambda p, t, s: reference_psnr_y(p, t, s), cases, PSNR_MISTAKES,
                      _float_compare,
                      f"{len(cases)} image pairs (a real HR image against its bicubic x4 and x3 reconstruction, "
                      "2 random pairs), to 0.001 dB", explain=_psnr_explain, verbose=verbose, use=reference_psnr_y)


# ----------------------------------------------------------------------------- 8. SR degradation

def reference_degrade(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The paper's training degradation without the final 8-bit rounding: Gaussian blur sigma = 1, then
    antialiased bicubic downsampling by ``scale`` (:func:`perceptual_utils.sr.degradation.degrade`)."""
    return degradation.degrade(hr, scale, sigma=1.0, quantize_output=False)


def _interp(x, scale, mode, antialias):
    h, w = x.shape[-2:]
    kw = {"align_corners": False, "antialias": antialias} if mode in ("bilinear", "bicubic") else {}
    return F.interpolate(x[None].float(), size=(h // scale, w // scale), mode=mode, **kw)[0].clamp(0, 1)


DEGRADE_MISTAKES: dict[str, tuple[str, Callable]] = {
    "no_blur": ("the Gaussian blur is missing: blur with sigma = 1 first (degradation.gaussian_blur), then "
                "downsample.", lambda x, s: degradation.bicubic_downsample(x, s).clamp(0, 1)),
    "blur_after": ("blur first, then downsample: blurring the small image removes detail the network should learn "
                   "to restore and leaves the aliasing in.",
                   lambda x, s: degradation.gaussian_blur(degradation.bicubic_downsample(x, s), 1.0).clamp(0, 1)),
    "no_antialias": ("bicubic without antialiasing (F.interpolate's default) aliases when shrinking: use "
                     "antialias=True, which is MATLAB's imresize (degradation.bicubic_downsample).",
                     lambda x, s: _interp(degradation.gaussian_blur(x, 1.0), s, "bicubic", False)),
    "bilinear": ("you downsampled bilinearly; the paper uses bicubic (antialiased, MATLAB's imresize).",
                 lambda x, s: _interp(degradation.gaussian_blur(x, 1.0), s, "bilinear", True)),
    "nearest": ("you subsampled (nearest neighbour / taking every scale-th pixel); the paper uses antialiased "
                "bicubic downsampling.",
                lambda x, s: degradation.gaussian_blur(x, 1.0)[..., ::s, ::s].clamp(0, 1)),
    "area": ("you averaged scale x scale blocks (area / average pooling); the paper uses antialiased bicubic.",
             lambda x, s: _interp(degradation.gaussian_blur(x, 1.0), s, "area", False)),
    "sigma_2": ("the blur is too strong: sigma = 1.0 (you used about 2).",
                lambda x, s: degradation.bicubic_downsample(degradation.gaussian_blur(x, 2.0), s).clamp(0, 1)),
    "sigma_half": ("the blur is too weak: sigma = 1.0 (you used about 0.5).",
                   lambda x, s: degradation.bicubic_downsample(degradation.gaussian_blur(x, 0.5), s).clamp(0, 1)),
}


def _degrade_cases() -> list[tuple[torch.Tensor, int]]:
    hr = _sr_images()[0][0]
    g = _seeded(70)
    return [(hr, 4), (hr[:, :36, :36].contiguous(), 3), (hr[:, :24, :32].contiguous(), 2),
            (torch.rand(3, 24, 24, generator=g), 4)]


def _lr_compare(got, want) -> bool:
    g, w = _as_tensor(got), _as_tensor(want)
    if g.dim() == 4 and g.shape[0] == 1:
        g = g[0]
    # 8-bit rounding of the result is allowed (half a grey level), nothing more
    return g.shape == w.shape and float((g - w).abs().max()) <= 0.5 / 255 + 1e-5


def _degrade_explain(got, want, case):
    g, w = _as_tensor(got), _as_tensor(want)
    if g.dim() == 4 and g.shape[0] == 1:
        g = g[0]
    hr, s = case
    if g.shape != w.shape:
        return (f"the LR image should be {tuple(w.shape)} (HR {tuple(hr.shape)} shrunk by {s}), got "
                f"{tuple(g.shape)}.", "shape")
    tv_g, tv_w = float(losses.total_variation_loss(g[None])), float(losses.total_variation_loss(w[None]))
    if float((g - w).abs().mean()) < 0.01:
        return (f"close, but not equal (max difference {float((g - w).abs().max()) * 255:.1f} grey levels): "
                "check the blur kernel (sigma 1, radius ceil(3 sigma) = 3, reflection padding) and the bicubic "
                "resize (antialias=True).", "close")
    return (f"your LR image is {'sharper' if tv_g > tv_w else 'blurrier'} than the reference: blur sigma = 1, then "
            "antialiased bicubic downsampling.", "different")


def check_degradation(fn: Callable | None, verbose: bool = True) -> CheckResult:
    """Check ``fn(hr, scale) -> lr``: the paper's SR training degradation, Gaussian blur sigma = 1 then bicubic
    downsampling (antialiased, as MATLAB's imresize); ``hr`` is ``(3, H, W)`` in [0, 1] with sides multiples of
    ``scale`` (reference: :func:`perceptual_utils.sr.degradation.degrade`; rounding to 8 bits is optional)."""
    cases = _degrade_cases()
    return _run_check("degradation", fn, reference_degrade, cases, DEGRADE_MISTAKES, _lr_compare,
                      f"{len(cases)} images (a real HR image at x4, x3, x2, and random pixels), to half a grey level",
                      explain=_degrade_explain, verbose=verbose)


# ----------------------------------------------------------------------------- 9. conditional instance norm

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
    g = _seeded(90)
    n, c = 4, 3
    gamma = 1 + 0.5 * torch.randn(n, c, generator=g, dtype=torch.float64)
    beta = 0.3 * torch.randn(n, c, generator=g, dtype=torch.float64)
    x1 = torch.randn(2, c, 4, 5, generator=g, dtype=torch.float64) * 2 + 1
    x2 = torch.randn(3, c, 6, 6, generator=g, dtype=torch.float64)
    x2[1, 2] = 0.25                                                       # a flat channel: variance 0
    photo = torch.stack([_photo(), _painting()]).double()                 # real images as activations
    one_hot = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    return [(x1, gamma, beta, one_hot),
            (x1, gamma, beta, torch.tensor([2.0, 1.0, 0.0, 1.0], dtype=torch.float64)),
            (x2, gamma, beta, torch.tensor([0.7, 0.0, 0.3, 0.0], dtype=torch.float64)),
            (photo, gamma, beta, torch.tensor([0.25, 0.25, 0.25, 0.25], dtype=torch.float64))]


def _cin_compare(got, want) -> bool:
    g, w = _as_tensor(got), _as_tensor(want)
    return g.shape == w.shape and bool(torch.isfinite(g).all()) and _close(g, w, rtol=1e-4, atol=1e-6)


def _cin_explain(got, want, case):
    g = _as_tensor(got)
    if g.shape != want.shape:
        return (f"the output has shape {tuple(g.shape)}; it should be the input's, {tuple(want.shape)}.", "shape")
    if not bool(torch.isfinite(g).all()):
        return CIN_MISTAKES["no_eps"][0], "no_eps"
    return None


def check_conditional_instance_norm(fn: Callable | None, verbose: bool = True) -> CheckResult:
    """Check ``fn(x, gamma, beta, mix) -> y`` (see :func:`reference_conditional_instance_norm`):
    ``x`` ``(B, C, H, W)``, ``gamma`` and ``beta`` ``(N, C)`` per style, ``mix`` ``(N,)`` non-negative weights."""
    cases = _cin_cases()
    return _run_check("conditional_instance_norm", fn, reference_conditional_instance_norm, cases, CIN_MISTAKES,
                      _cin_compare, f"{len(cases)} inputs (a one-hot style, unnormalised and partial mixes, a flat "
                      "channel, a photo and a painting as activations)", explain=_cin_explain, verbose=verbose)


# ----------------------------------------------------------------------------- solutions

_SOLUTIONS: dict[str, tuple[Callable, str]] = {
    "feature_loss": (losses.feature_reconstruction_loss, """
        def feature_loss(features, target):
            b, c, h, w = features.shape
            return (features - target).pow(2).sum() / (b * c * h * w)   # mean over batch of ||.||^2 / (C H W)
    """),
    "gram_matrix": (losses.gram_matrix, """
        def gram(features):
            b, c, h, w = features.shape
            psi = features.reshape(b, c, h * w)                          # C x HW per image
            return psi @ psi.transpose(1, 2) / (c * h * w)               # (B, C, C)
    """),
    "style_loss": (losses.style_reconstruction_loss, """
        def style_loss(features, target_grams):
            total = 0
            for layer, target in target_grams.items():
                g = gram(features[layer])                                # (B, C, C)
                total = total + (g - target).pow(2).sum(dim=(1, 2)).mean()   # ||.||_F^2, mean over batch
            return total
    """),
    "total_variation": (losses.total_variation_loss, """
        def total_variation(x):
            dh = x[:, :, 1:, :] - x[:, :, :-1, :]                        # vertical neighbours
            dw = x[:, :, :, 1:] - x[:, :, :, :-1]                        # horizontal neighbours
            return dh.pow(2).mean() + dw.pow(2).mean()
    """),
    "residual_block": (reference_residual_forward, ""),
    "training_step": (reference_training_step, ""),
    "psnr_y": (metrics.psnr, """
        def psnr_y(pred, target, scale):
            y_p = rgb_to_y_bt601(pred)[..., scale:-scale, scale:-scale].double()    # Y in 16..235, shaved
            y_t = rgb_to_y_bt601(target)[..., scale:-scale, scale:-scale].double()
            mse = (y_p - y_t).pow(2).mean()
            return float(10 * torch.log10(255**2 / mse))
    """),
    "degradation": (degradation.degrade, """
        def degrade(hr, scale):
            blurred = gaussian_blur(hr, sigma=1.0)                       # 1. blur, sigma = 1
            return bicubic_downsample(blurred, scale).clamp(0, 1)        # 2. antialiased bicubic
    """),
    "conditional_instance_norm": (reference_conditional_instance_norm, """
        def conditional_instance_norm(x, gamma, beta, mix):
            w = mix / mix.sum()                                          # convex weights over the styles
            g, b = w @ gamma, w @ beta                                   # one scale and shift per channel
            mu = x.mean(dim=(2, 3), keepdim=True)                        # per image and channel
            var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
            return g[None, :, None, None] * (x - mu) / (var + 1e-5).sqrt() + b[None, :, None, None]
    """),
}

#: exercise name -> its checker.
EXERCISES: dict[str, Callable] = {
    "feature_loss": check_feature_loss, "gram_matrix": check_gram_matrix, "style_loss": check_style_loss,
    "total_variation": check_total_variation, "residual_block": check_residual_block,
    "training_step": check_training_step, "psnr_y": check_psnr_y, "degradation": check_degradation,
    "conditional_instance_norm": check_conditional_instance_norm,
}


def solution(name: str, show: bool = True) -> str:
    """A solution of exercise ``name`` (see :data:`EXERCISES`): a short written-out answer and the package's
    reference source. Printed (``show``) and returned."""
    if name not in _SOLUTIONS:
        raise ValueError(f"unknown exercise {name!r}; choose from {', '.join(_SOLUTIONS)}")
    ref, short = _SOLUTIONS[name]
    parts = []
    if short.strip():
        parts.append("# A short solution\n" + textwrap.dedent(short).strip())
    parts.append(f"# The package's reference: {ref.__module__}.{ref.__qualname__}\n" + inspect.getsource(ref).rstrip())
    text = "\n\n".join(parts)
    if show:
        print(text)
    return text
