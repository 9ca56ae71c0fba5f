"""Notebook 01's exercises 2-5, the paper's losses: the feature reconstruction loss, the Gram matrix, the style
reconstruction loss and total variation (Johnson et al. 2016, Sec. 3; references in
:mod:`perceptual_utils.losses`)."""
from __future__ import annotations

from collections.abc import Callable

import torch

from ... import losses
from .checking import CheckResult, as_tensor, factor_hint, register, run_check, tensor_compare, tensors_close
from .inputs import painting, photo, rand, seeded, vgg_features


# ----------------------------------------------------------------------------- 2. feature loss

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
    cases = [(rand(2, 4, 5, 6, seed=1), rand(2, 4, 5, 6, seed=2)),
             (rand(3, 6, 3, 7, seed=3, relu=False), rand(3, 6, 3, 7, seed=4, relu=False)),
             (rand(1, 8, 4, 4, seed=5), rand(1, 8, 4, 4, seed=6))]
    real = vgg_features()
    if real is not None:
        cases.append((real["photo"]["relu2_2"].double(), real["painting"]["relu2_2"].double()))
    return cases


def _scalar_compare(got, want) -> bool:
    g = as_tensor(got)
    return g.numel() == 1 and tensors_close(g.reshape(()), as_tensor(want).reshape(()))


def check_feature_loss(fn: Callable | None, verbose: bool = True) -> CheckResult:
    """Check ``fn(features, target) -> scalar``: the feature reconstruction loss
    ``||phi_j(y_hat) - phi_j(y)||_2^2 / (C_j H_j W_j)``, averaged over the batch, for ``(B, C, H, W)``
    features (reference: :func:`perceptual_utils.losses.feature_reconstruction_loss`)."""
    cases = _loss_cases()
    return run_check("feature_loss", fn, _feat_ref, cases, FEATURE_MISTAKES, _scalar_compare,
                     f"{len(cases)} inputs (random features of 3 shapes"
                     f"{', VGG-16 relu2_2 of a photo and a painting' if len(cases) > 3 else ''})",
                     explain=lambda g, w, c: factor_hint(g, w, "divide by C_j H_j W_j, mean over the batch"),
                     verbose=verbose, use=losses.feature_reconstruction_loss)


register(2, "feature_loss", check_feature_loss, losses.feature_reconstruction_loss, """
        def feature_loss(features, target):
            b, c, h, w = features.shape
            return (features - target).pow(2).sum() / (b * c * h * w)   # mean over batch of ||.||^2 / (C H W)
    """)


# ----------------------------------------------------------------------------- 3. Gram matrix

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


def _gram_explain(got, want, case):
    g, w = as_tensor(got), as_tensor(want)
    f = case[0]
    if g.shape == (f.shape[0], f.shape[2] * f.shape[3], f.shape[2] * f.shape[3]):
        return GRAM_MISTAKES["transposed"][0], "transposed"
    if g.shape == w.shape and not torch.allclose(g, g.transpose(-1, -2), atol=1e-6):
        return "the result is not symmetric: a Gram matrix psi psi^T always is.", "not_symmetric"
    return factor_hint(got, want, "divide psi psi^T by C_j H_j W_j")


def _gram_cases() -> list[tuple[torch.Tensor]]:
    cases = [(rand(2, 3, 4, 5, seed=11),), (rand(1, 5, 2, 3, seed=12),), (rand(3, 4, 3, 3, seed=13, relu=False),)]
    real = vgg_features()
    if real is not None:
        cases += [(real["photo"]["relu1_2"].double(),), (real["painting"]["relu3_3"].double(),)]
    return cases


def check_gram_matrix(fn: Callable | None, verbose: bool = True) -> CheckResult:
    """Check ``fn(features) -> grams``: ``(B, C, H, W) -> (B, C, C)``, ``G = psi psi^T / (C H W)``
    with ``psi`` the features reshaped to ``(B, C, H*W)`` (reference: :func:`perceptual_utils.losses.gram_matrix`)."""
    cases = _gram_cases()
    return run_check("gram_matrix", fn, _gram_ref, cases, GRAM_MISTAKES, tensor_compare,
                     f"{len(cases)} inputs (random features of 3 shapes"
                     f"{', VGG-16 relu1_2 of a photo, relu3_3 of a painting' if len(cases) > 3 else ''})",
                     explain=_gram_explain, verbose=verbose, use=losses.gram_matrix)


register(3, "gram_matrix", check_gram_matrix, losses.gram_matrix, """
        def gram(features):
            b, c, h, w = features.shape
            psi = features.reshape(b, c, h * w)                          # C x HW per image
            return psi @ psi.transpose(1, 2) / (c * h * w)               # (B, C, C)
    """)


# ----------------------------------------------------------------------------- 4. style loss

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
        feats = {f"relu{i + 1}_2": rand(b, *s, seed=seed + i) for i, s in enumerate(shapes)}
        targets = {k: _gram_ref(rand(1, *s, seed=seed + 10 + i)) for i, (k, s) in enumerate(zip(feats, shapes))}
        return feats, targets

    cases = [layer_set(20, 2, [(3, 4, 4), (5, 2, 3)]), layer_set(40, 3, [(4, 3, 3), (2, 5, 5), (6, 2, 2)])]
    real = vgg_features()
    if real is not None:
        targets = {k: _gram_ref(v) for k, v in real["painting"].items()}
        cases.append(({k: v.double() for k, v in real["photo"].items()}, targets))
    return cases


def check_style_loss(fn: Callable | None, verbose: bool = True) -> CheckResult:
    """Check ``fn(features, target_grams) -> scalar``: ``sum_j ||G_j(y_hat) - G_j(y_s)||_F^2`` averaged over the
    batch; ``features`` maps layer -> ``(B, C, H, W)``, ``target_grams`` layer -> ``(1, C, C)`` (reference:
    :func:`perceptual_utils.losses.style_reconstruction_loss`). Use your Gram matrix (or the package's) inside."""
    cases = _style_cases()
    return run_check("style_loss", fn, _style_ref, cases, STYLE_MISTAKES, _scalar_compare,
                     f"{len(cases)} inputs (random features of 2 and 3 layers"
                     f"{', VGG-16 features of a photo against a painting' if len(cases) > 2 else ''})",
                     explain=lambda g, w, c: factor_hint(g, w, "Frobenius norm squared, mean over the batch"),
                     verbose=verbose, use=losses.style_reconstruction_loss)


register(4, "style_loss", check_style_loss, losses.style_reconstruction_loss, """
        def style_loss(features, target_grams):
            total = 0
            for layer, target in target_grams.items():
                g = gram(features[layer])                                # (B, C, C)
                total = total + (g - target).pow(2).sum(dim=(1, 2)).mean()   # ||.||_F^2, mean over batch
            return total
    """)


# ----------------------------------------------------------------------------- 5. total variation

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
    cases = [(torch.rand(2, 3, 6, 7, generator=seeded(30), dtype=torch.float64),),
             (torch.rand(1, 3, 9, 4, generator=seeded(31), dtype=torch.float64),),
             (photo()[None].double(),), (torch.stack([photo(), painting()]).double(),)]
    return cases


def check_total_variation(fn: Callable | None, verbose: bool = True) -> CheckResult:
    """Check ``fn(images) -> scalar``: ``mean (x[i+1,j] - x[i,j])^2 + mean (x[i,j+1] - x[i,j])^2`` over a
    ``(B, C, H, W)`` batch (reference: :func:`perceptual_utils.losses.total_variation_loss`)."""
    cases = _tv_cases()
    return run_check("total_variation", fn, _tv_ref, cases, TV_MISTAKES, _scalar_compare,
                     f"{len(cases)} inputs (random images of 2 sizes, a photo, a photo + painting batch)",
                     explain=lambda g, w, c: factor_hint(g, w, "a mean per direction"), verbose=verbose,
                     use=losses.total_variation_loss)


register(5, "total_variation", check_total_variation, losses.total_variation_loss, """
        def total_variation(x):
            dh = x[:, :, 1:, :] - x[:, :, :-1, :]                        # vertical neighbours
            dw = x[:, :, :, 1:] - x[:, :, :, :-1]                        # horizontal neighbours
            return dh.pow(2).mean() + dw.pow(2).mean()
    """)
