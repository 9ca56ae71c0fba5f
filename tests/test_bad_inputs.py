"""The bad-input probe as a table: each careless or hostile input gives exit code != 0 and one
line on stderr, ``error: ...``, naming the problem (never a traceback), and destroys nothing.

Everything runs in-process through ``perceptual_utils.cli.main`` on tiny images and tiny untrained
models, so the file stays fast and needs neither the VGG weights nor a network.
"""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from perceptual_utils import cli, model_io
from perceptual_utils.sr.net import SuperResolutionNet
from perceptual_utils.style.net import StyleTransferNet


def _png(path: Path, w: int = 24, h: int = 20, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _bomb_png(path: Path, side: int = 30000) -> Path:
    """A tiny file whose PNG header claims ``side x side`` pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def _crafted_model(path: Path, kind: str = "style_transfer", **config) -> Path:
    """A model file whose metadata config is replaced (as a hostile file would)."""
    from safetensors.torch import save_file

    net = StyleTransferNet("modern", channels=4, num_residual=1)
    meta = {"format": model_io.FORMAT, "kind": kind, "config": {**net.config, **config}, "training": {}}
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path),
              metadata={k: json.dumps(v) for k, v in meta.items()})
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_inputs")
    torch.manual_seed(0)
    f = {"root": root}
    f["img"] = _png(root / "photo.png")
    f["wide"] = _png(root / "wide.png", w=4000, h=16)
    f["bomb"] = _bomb_png(root / "bomb.png")
    (root / "folder").mkdir()
    _png(root / "folder" / "a.png", seed=1)
    _png(root / "folder" / "b.png", seed=2)
    (root / "existing_dir").mkdir()
    (root / "data" / "sr" / "Empty").mkdir(parents=True)
    f["style_model"] = model_io.save_model(StyleTransferNet("modern", channels=4, num_residual=1),
                                           root / "style.safetensors")
    f["sr_model"] = model_io.save_model(SuperResolutionNet(2, channels=4, num_residual=1), root / "sr.safetensors")
    f["unknown_keys"] = _crafted_model(root / "unknown_keys.safetensors", evil="1")
    f["huge_channels"] = _crafted_model(root / "huge_channels.safetensors", channels=3000)
    f["huge_depth"] = _crafted_model(root / "huge_depth.safetensors", num_residual=1e7)
    f["bad_variant"] = _crafted_model(root / "bad_variant.safetensors", norm=["x"])
    flipped = root / "flipped.safetensors"
    data = bytearray(f["style_model"].read_bytes())
    data[-5] ^= 0xFF  # one byte of the last tensor
    flipped.write_bytes(bytes(data))
    f["flipped"] = flipped
    return f


def _s(files, *parts: str) -> str:
    return str(Path(files["root"], *parts))


# (id, argv with {name} placeholders for the fixture's files, keyword the one-line error must contain)
CASES = [
    ("stylize-output-is-input", "stylize --model {style_model} --input {img} --output {img}", "overwrite"),
    ("stylize-folder-into-itself", "stylize --model {style_model} --input {root}/folder --output {root}/folder",
     "input folder"),
    ("stylize-device-bogus", "stylize --model {style_model} --input {img} --output {root}/o.png --device bogus",
     "not a device"),
    ("stylize-overlap-negative", "stylize --model {style_model} --input {img} --output {root}/o.png --overlap -10",
     "--overlap"),
    ("stylize-tile-1", "stylize --model {style_model} --input {img} --output {root}/o.png --tile 1", "--tile"),
    ("stylize-tile-not-int", "stylize --model {style_model} --input {img} --output {root}/o.png --tile abc",
     "invalid int"),
    ("stylize-bomb", "stylize --model {style_model} --input {bomb} --output {root}/o.png", "decompression bomb"),
    ("stylize-sr-model", "stylize --model {sr_model} --input {img} --output {root}/o.png", "expected a 'style_transfer'"),
    ("model-unknown-keys", "stylize --model {unknown_keys} --input {img} --output {root}/o.png", "unknown config keys"),
    ("model-channels-3000", "stylize --model {huge_channels} --input {img} --output {root}/o.png", "out of range"),
    ("model-num-residual-1e7", "stylize --model {huge_depth} --input {img} --output {root}/o.png", "out of range"),
    ("model-option-not-string", "stylize --model {bad_variant} --input {img} --output {root}/o.png", "must be a string"),
    ("model-flipped-bytes", "stylize --model {flipped} --input {img} --output {root}/o.png", "corrupted"),
    ("model-missing", "stylize --model {root}/nope.safetensors --input {img} --output {root}/o.png", "no such model"),
    ("upscale-tile-1", "upscale --model {sr_model} --input {img} --output {root}/o.png --tile 1", "--tile"),
    ("upscale-style-model", "upscale --model {style_model} --input {img} --output {root}/o.png", "expected a 'super_resolution'"),
    ("upscale-bomb", "upscale --model {sr_model} --input {bomb} --output {root}/o.png", "decompression bomb"),
    ("upscale-output-is-input", "upscale --model {sr_model} --input {img} --output {img}", "overwrite"),
    ("gatys-unknown-extension", "gatys --content {img} --style {img} --output {root}/o.xyz", "extension"),
    ("gatys-output-is-folder", "gatys --content {img} --style {img} --output {root}/existing_dir", "existing folder"),
    ("gatys-style-weight-nan", "gatys --content {img} --style {img} --output {root}/o.png --style-weight nan",
     "finite"),
    ("gatys-tv-weight-negative", "gatys --content {img} --style {img} --output {root}/o.png --tv-weight -1", ">= 0"),
    ("gatys-output-is-content", "gatys --content {img} --style {wide} --output {img}", "overwrite"),
    ("gatys-bomb", "gatys --content {bomb} --style {img} --output {root}/o.png", "decompression bomb"),
    ("gatys-elongated-44GB", "gatys --content {wide} --style {img} --output {root}/o.png", "exceeds"),
    ("invert-size-negative", "invert --input {img} --layer relu2_2 --output {root}/o.png --size -5", "--size"),
    ("invert-output-is-folder", "invert --input {img} --layer relu2_2 --output {root}/existing_dir", "existing folder"),
    ("evaluate-sr-empty-folder", "evaluate-sr --method bicubic --root {root}/data --sets Empty --no-lpips",
     "no image files"),
    ("evaluate-sr-missing-set", "evaluate-sr --method bicubic --root {root}/data --sets Nope --no-lpips", "not found"),
    ("unknown-command", "bogus", "invalid choice"),
]


def _run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv, keyword", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_error(files, argv, keyword, capsys, monkeypatch):
    monkeypatch.delenv("PERCEPTUAL_UTILS_DEBUG", raising=False)
    before = {p: p.stat().st_mtime_ns for p in files["root"].rglob("*") if p.is_file()}
    code, err = _run(argv.format(**{k: str(v) for k, v in files.items()}).split(), capsys)
    lines = err.strip().splitlines()
    assert code not in (0, None), err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert keyword.lower() in lines[0].lower(), lines[0]
    after = {p: p.stat().st_mtime_ns for p in files["root"].rglob("*") if p.is_file()}
    assert after == before  # nothing written, nothing destroyed


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda(files, capsys):
    code, err = _run(["stylize", "--model", str(files["style_model"]), "--input", str(files["img"]),
                      "--output", _s(files, "o.png"), "--device", "cuda"], capsys)
    assert code == 1 and err.count("\n") == 1 and "CUDA is not available" in err


def test_full_disk_leaves_no_partial_file(files, capsys, monkeypatch, tmp_path):
    import errno

    def full(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG half")  # a partial write, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)
    target = tmp_path / "out.png"
    target.write_bytes(b"old result")
    code, err = _run(["stylize", "--model", str(files["style_model"]), "--input", str(files["img"]),
                      "--output", str(target), "--no-progress"], capsys)
    assert code == 1 and err.count("\n") == 1 and "No space left" in err and str(target) in err
    assert target.read_bytes() == b"old result"  # the old file is intact, no truncated image
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temporary left behind


def test_two_inputs_with_the_same_output_name_are_refused(files, capsys, tmp_path):
    other = tmp_path / "sub"
    other.mkdir()
    _png(other / "photo.png", seed=5)
    code, err = _run(["stylize", "--model", str(files["style_model"]), "--input", str(files["img"]),
                      str(other / "photo.png"), "--output", str(tmp_path / "out")], capsys)
    assert code == 1 and "both would be written" in err and not (tmp_path / "out").exists()


def test_good_input_still_works_and_writes_atomically(files, capsys, tmp_path):
    code, err = _run(["stylize", "--model", str(files["style_model"]), "--input", str(files["img"]),
                      "--output", str(tmp_path / "o.png")], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "o.png").size == (24, 20)
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]


def test_bomb_in_a_training_folder_is_skipped(files, tmp_path):
    from perceptual_utils.training_data import ImageFolderDataset
    from perceptual_utils.images import ImageLoadError, load_image

    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_image(files["bomb"])
    _bomb_png(tmp_path / "a_bomb.png")
    _png(tmp_path / "b_good.png", w=40, h=40)
    dataset = ImageFolderDataset(tmp_path, size=16, seed=0)
    with pytest.warns(UserWarning, match="skipping unreadable training image.*decompression bomb"):
        crops = [dataset[i] for i in range(4)]  # every sample, even those that drew the bomb
    assert all(c.shape == (3, 16, 16) for c in crops)


def test_old_model_files_without_digest_still_load(files, tmp_path):
    path = _crafted_model(tmp_path / "old.safetensors")  # written without a digest, as before
    assert "tensor_sha256" not in model_io.read_model_metadata(path)
    model_io.load_model(path, kind="style_transfer")


def test_tensor_shapes_are_checked_before_building(tmp_path):
    from safetensors.torch import save_file

    net = StyleTransferNet("modern", channels=4, num_residual=1)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    state["down.0.1.weight"] = torch.zeros(4, 3, 3, 3)
    meta = {"format": model_io.FORMAT, "kind": "style_transfer", "config": net.config, "training": {}}
    save_file(state, str(tmp_path / "m.safetensors"), metadata={k: json.dumps(v) for k, v in meta.items()})
    with pytest.raises(model_io.ModelFileError, match="shape"):
        model_io.load_model(tmp_path / "m.safetensors")


# Validators for the training commands (train-style, train-sr), which call them before any work.
VALIDATOR_CASES = [
    ("check_finite", ("--lr", float("inf")), {"minimum": 0, "inclusive": False}, "finite"),
    ("check_finite", ("--lr", 0.0), {"minimum": 0, "inclusive": False}, "> 0"),
    ("check_finite", ("--style-weight", float("nan")), {"minimum": 0}, "finite"),
    ("check_int", ("--image-size", 0), {"minimum": 16}, "at least 16"),
    ("check_int", ("--image-size", -5), {"minimum": 16}, "at least 16"),
    ("check_int", ("--stop-after", -1), {"minimum": 1, "optional": True}, "at least 1"),
    ("check_int", ("--patch", 0), {"minimum": 8}, "at least 8"),
    ("check_device", ("bogus",), {}, "not a device"),
]


@pytest.mark.parametrize("name, args, kwargs, keyword", VALIDATOR_CASES,
                         ids=[f"{c[0]}-{c[1][0]}-{c[1][-1]}" for c in VALIDATOR_CASES])
def test_training_argument_validators(name, args, kwargs, keyword):
    from perceptual_utils import validation

    with pytest.raises(validation.InvalidArgument) as info:
        getattr(validation, name)(*args, **kwargs)
    assert keyword in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("option, value, keyword", [
    ("lr", float("inf"), "--lr"), ("style_weight", float("nan"), "--style-weight"), ("image_size", 0, "--image-size"),
    ("image_size", -5, "--image-size"), ("stop_after", -1, "--stop-after"), ("patch", 0, "--patch"),
    ("device", "bogus", "--device"), ("steps", 0, "--steps"), ("shift_weight", -1.0, "--shift-weight"),
    ("shift_weight", float("inf"), "--shift-weight"), ("warmup_steps", -1, "--warmup-steps")])
def test_check_training_args(option, value, keyword):
    import argparse

    from perceptual_utils.validation import InvalidArgument, check_training_args

    good = argparse.Namespace(lr=1e-3, style_weight=None, image_size=256, stop_after=None, patch=288, scale=4,
                              device="cpu", steps=10)
    check_training_args(good)
    setattr(good, option, value)
    with pytest.raises(InvalidArgument, match=keyword):
        check_training_args(good)
