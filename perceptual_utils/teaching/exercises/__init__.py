"""Self-checks for the workbook's exercises.

A notebook asks the student to write one piece of the paper (the ImageNet normalisation, a loss, the Gram
matrix, the feature-inversion objective, a residual block's forward, a training step, the SR degradation, PSNR
on Y, conditional instance norm) and then calls a checker::

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
written out as code in its topic's module: a missing square, a transposed Gram matrix, RGB instead of Y, ...) and
names the one that matches (:attr:`CheckResult.mistake`, :attr:`CheckResult.hint`). Otherwise it
falls back to what it can see: a wrong shape, a constant factor, a constant offset.

Solutions live apart from the exercises: :func:`solution` prints one (the reference's source and a
short written-out answer), so a stuck student can look without the answer being on the page.

One module per topic, in the workbook's order, each with its references, test cases and typical mistakes:
:mod:`.loss_network` (notebook 00, exercise 1), :mod:`.losses` (01, exercises 2-5), :mod:`.inversion` (02,
exercise 6), :mod:`.networks` (03, exercise 7), :mod:`.training_step` (04, exercise 8), :mod:`.super_resolution`
(05, exercises 9-10), :mod:`.multistyle` (06, exercise 11); the
machinery they share (the result, the comparison, the registry behind :data:`EXERCISES` and :func:`solution`)
is :mod:`.checking`, their real test inputs :mod:`.inputs`.
"""
from __future__ import annotations

from .checking import EXERCISES, CheckResult, solution
from .inversion import check_inversion_objective, reference_inversion_objective
from .loss_network import check_imagenet_normalisation, reference_imagenet_normalisation
from .losses import check_feature_loss, check_gram_matrix, check_style_loss, check_total_variation
from .multistyle import check_conditional_instance_norm, reference_conditional_instance_norm
from .networks import check_residual_block, reference_residual_forward
from .super_resolution import check_degradation, check_psnr_y, reference_degrade, reference_psnr_y
from .training_step import LossPieces, check_training_step, make_loss_pieces, reference_training_step

__all__ = [
    "CheckResult", "LossPieces", "EXERCISES", "solution", "reference_training_step", "reference_residual_forward",
    "reference_psnr_y", "reference_degrade", "make_loss_pieces",
    "check_feature_loss", "check_gram_matrix", "check_style_loss", "check_total_variation",
    "check_residual_block", "check_training_step", "check_psnr_y", "check_degradation",
    "reference_conditional_instance_norm", "check_conditional_instance_norm",
    "check_imagenet_normalisation", "reference_imagenet_normalisation", "check_inversion_objective",
    "reference_inversion_objective",
]
