"""Optimisation-based image synthesis: what a perceptual loss *sees*.

- :mod:`.runner`: the task runner all three share (targets, one loop with L-BFGS restarts,
  :class:`~.runner.OptimizationResult`), the noise start and the argument checks.
- :mod:`.inversion`: :func:`~.inversion.invert_features`, feature reconstruction (Fig. 3).
- :mod:`.texture`: :func:`~.texture.synthesize_style`, style reconstruction from Gram matrices (Fig. 4).
- :mod:`.gatys`: :func:`~.gatys.gatys_style_transfer`, with the feed-forward network's objective.
- :mod:`.cli`: the ``gatys`` and ``invert`` commands.
"""
