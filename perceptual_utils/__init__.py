"""perceptual_utils: Johnson, Alahi & Fei-Fei (2016), *Perceptual Losses for Real-Time Style
Transfer and Super-Resolution*, as a small, tested package behind the workbook's notebooks.

Public names are imported lazily, so ``import perceptual_utils`` is quick and a notebook only
pays for what it uses.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    # configuration
    "get_profile": "config", "Profile": "config", "data_root": "config", "seed_everything": "config",
    "default_device": "config", "ConfigError": "config",
    # loss network and losses
    "LossNetwork": "vgg.network", "VGG16_LAYERS": "vgg.network", "STYLE_LAYERS": "vgg.network",
    "CONTENT_LAYER": "vgg.network",
    "feature_reconstruction_loss": "losses", "gram_matrix": "losses", "style_reconstruction_loss": "losses",
    "total_variation_loss": "losses", "pixel_loss": "losses", "PerceptualLoss": "losses",
    "LossWeights": "losses",
    "resolve_weights": "vgg.weights", "WeightsNotFoundError": "vgg.weights",
    # images and data
    "load_image": "images", "save_image": "images", "show_images": "images", "ImageLoadError": "images",
    "resize_short_side": "images", "resize_long_side": "images", "center_crop": "images",
    "random_crop": "images", "match_histograms": "images", "preserve_color": "color",
    "ImageFolderDataset": "training_data",
    # models
    "save_model": "model_io", "load_model": "shipped_models", "ModelFileError": "model_io",
    "StyleTransferNet": "style.net", "SuperResolutionNet": "sr.net",
    # training (shared by both networks)
    "TrainConfig": "training.settings", "TrainResult": "training.loop", "TrainSettings": "training.settings",
    # optimisation (Gatys, inversion)
    "invert_features": "optimization.inversion", "synthesize_style": "optimization.texture",
    "gatys_style_transfer": "optimization.gatys",
    # feed-forward style transfer
    "train_style": "style.training", "stylize": "style.stylize",
    # inference on the machine's fast path, and ONNX export
    "choose_path": "inference", "export_onnx": "export",
    # super-resolution
    "train_sr": "sr.training", "upscale": "sr.upscale", "degrade": "sr.degradation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'perceptual_utils' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

