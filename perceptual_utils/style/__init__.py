"""Feed-forward style transfer (the paper's Section 4.1).

- :mod:`.net`: :class:`~.net.StyleTransferNet` (paper and modern variants, multi-style),
  batch-norm folding, receptive field, compute, checkerboard energy.
- :mod:`.training`: :func:`~.training.train_style` and its recipes (``train-style``).
- :mod:`.nearest`: ``--init-from nearest``, the shipped network to fine-tune for a new painting.
- :mod:`.add_style`: ``--add-to``, a new painting as a new style slot of a multi-style network.
- :mod:`.objective`: the training loss, one style or several (conditional instance norm), with the
  optional shift-consistency term.
- :mod:`.data`: the crop-size schedule, the style of each step of a multi-style run, preview photos.
- :mod:`.stylize`: one forward pass per image, the fast inference path, tiling, style mixes (``stylize``).
- :mod:`.evaluation`: Gatys-equivalent iterations and checkerboard energy of a trained network (Fig. 5).
- :mod:`.timing`: the paper's Table 1, Gatys vs. the network, timed on this device (``bench``).
"""
