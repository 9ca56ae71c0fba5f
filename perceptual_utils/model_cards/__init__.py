"""The shipped models' cards and their shipping: ``python -m perceptual_utils models --cards``
writes ``models/README.md`` from the model files in ``models/`` and the measurements in
``benchmarks/results/``; ``models --ship RUN_FOLDER NAME`` ships a trained model.

- :mod:`.results`: what the cards quote from the benchmark scripts' results, and the one-line summaries.
- :mod:`.commands`: the commands that reproduce a model.
- :mod:`.lineage`: the models a fine-tune started from (by weights digest in git), its earlier stages,
  the training time they add up to.
- :mod:`.style_cards`, :mod:`.sr_cards`: the card of a style model, of a super-resolution model.
- :mod:`.writer`: ``models/README.md`` and ``models/gallery.jpg``.
- :mod:`.shipping`: copying a run's model into ``models/`` with its metadata; refreshing stale metadata.
- :mod:`.cli`: the ``models`` command.

Model files are read only through :mod:`perceptual_utils.model_io` (and found by name through
:mod:`perceptual_utils.shipped_models`).
"""
