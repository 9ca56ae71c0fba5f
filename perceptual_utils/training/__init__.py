"""Training, shared by the style-transfer and super-resolution networks: one loop for both.

- :mod:`.settings`: :class:`~.settings.TrainConfig` (what the loop runs with) and
  :class:`~.settings.TrainSettings` (what a trainer is given), recipes, ``--init-from``, durations.
- :mod:`.planning`: ``--time-budget`` step planning and the CPU memory-layout measurement.
- :mod:`.hardware`: the device's description, the ``torchrun`` process group, batches on the device.
- :mod:`.loop`: :func:`~.loop.train_loop` and its :class:`~.loop.TrainResult`.
- :mod:`.cli`: the options every ``train-*`` command shares, and its closing report.
"""
from .loop import TrainResult, train_loop
from .settings import TrainConfig, TrainSettings

__all__ = ["TrainConfig", "TrainResult", "TrainSettings", "train_loop"]
