"""What the notebooks teach with, beyond the package's own functions.

- :mod:`.frames`: the normalised reconstruction objective of notebook 02 and its frames, computed
  once and cached on disk (:class:`~.frames.FrameSet`).
- :mod:`.panel`: :class:`~.panel.ReconstructionPanel`, the ipywidgets sliders over those frames.
- :mod:`.mixer`: :class:`~.mixer.StyleMixerPanel`, notebook 06's sliders over a multi-style network's styles
  and strength (computed live, one forward pass per move).
- :mod:`.exercises`: the notebooks' exercises, their checkers (hints for typical mistakes) and solutions.
- :mod:`.run_notebooks`: executes notebooks for committing (``python -m perceptual_utils.teaching.run_notebooks``)
  and records how their outputs were made, which ``tests/test_notebooks_committed.py`` checks.
"""
