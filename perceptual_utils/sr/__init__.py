"""Single-image super-resolution (the paper's Section 4.2).

- :mod:`.net`: :class:`~.net.SuperResolutionNet` (paper and modern variants).
- :mod:`.degradation`: blur + bicubic downsampling, the training pairs and the evaluation protocol.
- :mod:`.training`: :func:`~.training.train_sr`, feature or per-pixel loss (``train-sr``).
- :mod:`.upscale`: super-resolve images, tiled, histogram-matched (``upscale``).
- :mod:`.metrics`: PSNR and SSIM (Y channel, shaved border) and LPIPS-VGG.
- :mod:`.evaluation`: Set5 / Set14 / BSD100 with the standard protocol (``evaluate-sr``).
"""
