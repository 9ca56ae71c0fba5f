"""What the model cards quote from benchmarks/results/ (perceptual_utils/model_cards/results.py)."""
from __future__ import annotations

import json

import torch

from perceptual_utils.model_cards import results
from perceptual_utils.model_io import save_model, stored_digest
from perceptual_utils.style.net import StyleTransferNet


def test_a_card_shows_the_blob_measure_only_for_the_weights_it_was_measured_on(tmp_path, monkeypatch):
    path = save_model(StyleTransferNet("modern"), tmp_path / "tiny.safetensors")
    area = {"mean": 0.012, "per_photo": [0.01, 0.02, 0.0, 0.018]}
    blobs = tmp_path / "blob_area.json"
    monkeypatch.setattr(results, "BLOBS", blobs)
    blobs.write_text(json.dumps({"models": {"tiny": {"tensor_sha256": stored_digest(path),
                                                     "tiny_style": area}}}))
    assert results.blob_areas("tiny", path) == {"tiny_style": area}
    assert results.blob_sentence(area) == "1.20% of the outputs (per photo 1.00 / 2.00 / 0.00 / 1.80)"
    assert results.blob_areas("other", path) is None  # never measured
    torch.manual_seed(1)
    save_model(StyleTransferNet("modern"), path)  # re-shipped with other weights: the old numbers are stale
    assert results.blob_areas("tiny", path) is None
