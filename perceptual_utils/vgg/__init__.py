"""The loss network: a frozen ImageNet VGG-16 and where its weights come from.

- :mod:`.network`: :class:`~.network.LossNetwork` (activations of named ReLU layers), the layer
  names, strides and the one "does this network tap these layers" check.
- :mod:`.weights`: finding and reading the weights file (``$PERCEPTUAL_UTILS_WEIGHTS``, ``data/``,
  torchvision's cache).
- :mod:`.cache`: :func:`~.cache.get_loss_network`, one network per layer set, loaded once.
"""
