"""The bad-input probe as a table: each careless or hostile input gives exit code != 0 and one
line on stderr, ``error: ...``, naming the problem (never a traceback), and destroys nothing.

Everything runs in-process through ``perceptual_utils.cli.main`` on tiny images and tiny untrained
models, so the file stays fast and needs neither the VGG weights nor a network. The second table
(special files, newlines in names, warnings, full disks, every count option): test_bad_inputs_files.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from helpers import file_times, one_error_line, png, png_claiming, run_cli, tiny_models
from perceptual_utils import model_io
from perceptual_utils.sr.net import SuperResolutionNet
from perceptual_utils.style.net import StyleTransferNet


def _bomb_png(path: Path) -> Path:
    """A tiny file whose PNG header claims 30000 x 30000 RGB pixels (a decompression bomb)."""
    return png_claiming(path, side=30000, colour_type=2)


def _crafted_model(path: Path, kind: str = "style_transfer", **config) -> Path:
    """A model file whose metadata config is replaced (as a hostile file would)."""
    from safetensors.torch import save_file

    net = StyleTransferNet("modern", channels=4, num_residual=1)
    meta = {"format": model_io.FORMAT, "kind": kind, "config": {**net.config, **config}, "training": {}}
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path),
              metadata={k: json.dumps(v) for k, v in meta.items()})
    return path


def _non_finite_model(path: Path, how: str) -> Path:
    """A style model file whose weights are NaN (``nan``, with a valid digest), inf from a float16
    overflow (``fp16``), NaN without a digest (``old``), or finite but overflowing to a NaN output
    (``overflow``: 3e37 in every conv)."""
    from safetensors.torch import save_file

    net = StyleTransferNet("modern", channels=4, num_residual=1)
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() == 4:
                p.fill_({"nan": float("nan"), "fp16": 1e6, "old": float("nan"), "overflow": 3e37}[how])
                if how != "overflow":
                    break
    state = {k: (v.half() if how == "fp16" and v.is_floating_point() else v).contiguous()
             for k, v in net.state_dict().items()}
    meta = {"format": model_io.FORMAT, "kind": "style_transfer", "config": net.config, "training": {}}
    if how != "old":
        meta[model_io.DIGEST_KEY] = model_io.tensors_digest(state)
    save_file(state, str(path), metadata={k: json.dumps(v) for k, v in meta.items()})
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_inputs")
    torch.manual_seed(0)
    f = {"root": root}
    f["img"] = png(root / "photo.png")
    f["wide"] = png(root / "wide.png", w=4000, h=16)
    f["bomb"] = _bomb_png(root / "bomb.png")
    (root / "folder").mkdir()
    png(root / "folder" / "a.png", seed=1)
    png(root / "folder" / "b.png", seed=2)
    (root / "existing_dir").mkdir()
    (root / "data" / "sr" / "Empty").mkdir(parents=True)
    f.update(tiny_models(root))
    f["unknown_keys"] = _crafted_model(root / "unknown_keys.safetensors", evil="1")
    f["huge_channels"] = _crafted_model(root / "huge_channels.safetensors", channels=3000)
    f["huge_depth"] = _crafted_model(root / "huge_depth.safetensors", num_residual=1e7)
    f["bad_variant"] = _crafted_model(root / "bad_variant.safetensors", norm=["x"])
    for how in ("nan", "fp16", "old", "overflow"):
        f[f"{how}_model"] = _non_finite_model(root / f"{how}.safetensors", how)
    sr_nan = SuperResolutionNet(2, channels=4, num_residual=1)
    with torch.no_grad():
        next(sr_nan.parameters()).fill_(float("nan"))
    f["sr_nan"] = model_io.save_model(sr_nan, root / "sr_nan.safetensors")
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
    # issue 39: garbage models, unknown extensions, tiles below the halo, zero counts, files a run must keep
    ("model-nan-weights", "stylize --model {nan_model} --input {img} --output {root}/o.png", "not finite"),
    ("model-fp16-overflow-inf", "stylize --model {fp16_model} --input {img} --output {root}/o.png", "not finite"),
    ("model-nan-no-digest", "stylize --model {old_model} --input {img} --output {root}/o.png", "not finite"),
    ("model-output-overflows", "stylize --model {overflow_model} --input {img} --output {root}/o.png",
     "output is not finite"),
    ("upscale-nan-weights", "upscale --model {sr_nan} --input {img} --output {root}/o.png", "not finite"),
    ("stylize-unknown-extension", "stylize --model {style_model} --input {img} --output {root}/o.xyz", "extension"),
    ("upscale-unknown-extension", "upscale --model {sr_model} --input {img} --output {root}/o.xyz", "extension"),
    ("stylize-tile-16", "stylize --model {style_model} --input {img} --output {root}/o.png --tile 16", "too small"),
    ("upscale-tile-16", "upscale --model {sr_model} --input {img} --output {root}/o.png --tile 16", "too small"),
    ("stylize-threads-0", "stylize --model {style_model} --input {img} --output {root}/o.png --threads 0", ">= 1"),
    ("gatys-threads-negative", "gatys --content {img} --style {img} --output {root}/o.png --threads -2", ">= 1"),
    ("bench-iterations-0", "bench --iterations 0 --sizes 16 --no-train", "--iterations"),
    ("bench-train-batch-0", "bench --train-batch 0 --sizes 16", "--train-batch"),
    ("bench-sizes-0", "bench --sizes 0 --no-train", "--sizes"),
    ("bench-repeats-0", "bench --repeats 0 --sizes 16 --no-train", "--repeats"),
    ("bench-train-steps-negative", "bench --train-steps -1 --sizes 16", "--train-steps"),
    ("bench-json-is-model", "bench --model {style_model} --json {style_model} --sizes 16 --no-train", "overwrite"),
    ("bench-json-is-folder", "bench --json {root}/existing_dir --sizes 16 --no-train", "existing folder"),
    ("train-style-num-residual-65", "train-style --style {img} --data {root}/folder --out {root}/run --steps 1 "
     "--image-size 16 --num-residual 65", "--num-residual"),
    ("train-sr-channels-2000", "train-sr --data {root}/folder --out {root}/run --loss pixel --steps 1 --channels 2000",
     "--channels"),
    ("train-style-export-is-style", "train-style --style {img} --data {root}/folder --out {root}/run --steps 1 "
     "--image-size 16 --export {img}", "overwrite"),
    ("train-style-export-is-checkpoint", "train-style --style {img} --data {root}/folder --out {root}/run --steps 1 "
     "--image-size 16 --export {root}/run/checkpoint.safetensors", "--out"),
    ("train-sr-export-is-run-model", "train-sr --data {root}/folder --out {root}/run --loss pixel --steps 1 "
     "--export {root}/run/model.safetensors", "--out"),
    ("train-style-init-from-nearest-other-width", "train-style --style {img} --data {root}/folder --out {root}/run "
     "--steps 1 --image-size 16 --channels 6 --init-from nearest", "no shipped single-style network"),
    ("train-sr-threads-0", "train-sr --data {root}/folder --out {root}/run --loss pixel --steps 1 --threads 0", ">= 1"),
]


@pytest.mark.parametrize("argv, keyword", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_error(files, argv, keyword, capsys, monkeypatch):
    monkeypatch.delenv("PERCEPTUAL_UTILS_DEBUG", raising=False)
    before = file_times(files["root"])
    line = one_error_line(*run_cli(argv.format(**{k: str(v) for k, v in files.items()}).split(), capsys))
    assert keyword.lower() in line.lower(), line
    assert file_times(files["root"]) == before  # nothing written, nothing destroyed


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda(files, capsys):
    code, err = run_cli(["stylize", "--model", str(files["style_model"]), "--input", str(files["img"]),
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
    code, err = run_cli(["stylize", "--model", str(files["style_model"]), "--input", str(files["img"]),
                      "--output", str(target), "--no-progress"], capsys)
    assert code == 1 and err.count("\n") == 1 and "No space left" in err and str(target) in err
    assert target.read_bytes() == b"old result"  # the old file is intact, no truncated image
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temporary left behind


def test_two_inputs_with_the_same_output_name_are_refused(files, capsys, tmp_path):
    other = tmp_path / "sub"
    other.mkdir()
    png(other / "photo.png", seed=5)
    code, err = run_cli(["stylize", "--model", str(files["style_model"]), "--input", str(files["img"]),
                      str(other / "photo.png"), "--output", str(tmp_path / "out")], capsys)
    assert code == 1 and "both would be written" in err and not (tmp_path / "out").exists()


def test_good_input_still_works_and_writes_atomically(files, capsys, tmp_path):
    code, err = run_cli(["stylize", "--model", str(files["style_model"]), "--input", str(files["img"]),
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
    png(tmp_path / "b_good.png", w=40, h=40)
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
