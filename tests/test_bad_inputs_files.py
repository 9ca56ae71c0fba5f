"""The bad-input probe, second table (issue 39): files that are no files (a named pipe, a device),
file names holding a newline, library warnings around an error, a full disk during training and
for ``bench --json``, a run folder's clean-up next to the user's own files, outputs landing on
inputs, and every count option of every command given 0 or -1.

Like ``tests/test_bad_inputs.py``: in-process through ``perceptual_utils.cli.main`` on tiny images
and untrained models (one subprocess, for what Python prints around an error); training runs use
the per-pixel loss, so no VGG weights are needed.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import file_times, one_error_line, png, png_claiming, run_cli, tiny_models
from perceptual_utils import cli, model_io
from perceptual_utils.style.net import StyleTransferNet


def _warning_png(path: Path) -> Path:
    """A grey PNG claiming 10000 x 10000 px: above PIL's warning threshold (89 MP), below its
    error (179 MP), with truncated data, so loading warns and then fails."""
    return png_claiming(path, side=10000, colour_type=0)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_files")
    torch.manual_seed(0)
    f = {"root": root, "img": png(root / "photo.png"), "warn": _warning_png(root / "warn.png")}
    for name in ("a", "b", "c"):
        png(root / "folder" / f"{name}.png", w=40, h=36, seed=ord(name))
    png(root / "data" / "sr" / "Small" / "a.png", w=32, h=32)
    f.update(tiny_models(root))
    os.mkfifo(root / "pipe.png")
    f["fifo"] = root / "pipe.png"
    (root / "bad\nname.png").write_bytes(b"not an image")
    return f


@pytest.fixture
def no_hang():
    """Turn a hang (a named pipe opened for reading waits for a writer forever) into a failure."""
    def timeout(signum, frame):
        raise TimeoutError("the command hung")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# (id, argv as a list with {name} placeholders, keyword the one-line error must contain)
CASES = [
    ("stylize-input-fifo", ["stylize", "--model", "{style_model}", "--input", "{fifo}", "--output", "{root}/o.png"],
     "not a regular file"),
    ("upscale-input-fifo", ["upscale", "--model", "{sr_model}", "--input", "{fifo}", "--output", "{root}/o.png"],
     "not a regular file"),
    ("gatys-content-fifo", ["gatys", "--content", "{fifo}", "--style", "{img}", "--output", "{root}/o.png"],
     "not a regular file"),
    ("invert-input-fifo", ["invert", "--input", "{fifo}", "--layer", "relu2_2", "--output", "{root}/o.png"],
     "not a regular file"),
    ("stylize-input-device", ["stylize", "--model", "{style_model}", "--input", "/dev/zero", "--output",
                              "{root}/o.png"], "not a regular file"),
    ("stylize-missing-name-with-newline", ["stylize", "--model", "{style_model}", "--input", "{root}/no\nsuch.png",
                                           "--output", "{root}/o.png"], "no\\nsuch.png: no such file"),
    ("stylize-unreadable-name-with-newline", ["stylize", "--model", "{style_model}", "--input", "{root}/bad\nname.png",
                                              "--output", "{root}/o.png"], "bad\\nname.png: not an image"),
    ("gatys-missing-name-with-newline", ["gatys", "--content", "{root}/no\nsuch.png", "--style", "{img}",
                                         "--output", "{root}/o.png"], "no\\nsuch.png: no such file"),
    ("model-missing-name-with-newline", ["stylize", "--model", "{root}/no\nmodel.safetensors", "--input", "{img}",
                                         "--output", "{root}/o.png"], "no\\nmodel.safetensors: no such model"),
    ("output-name-with-newline", ["stylize", "--model", "{style_model}", "--input", "{img}",
                                  "--output", "{root}/o\nx.xyz"], "o\\nx.xyz: unknown image file extension"),
    ("gatys-warning-then-error", ["gatys", "--content", "{warn}", "--style", "{img}", "--output", "{root}/o.png"],
     "(warning: image size"),
    ("stylize-warning-then-error", ["stylize", "--model", "{style_model}", "--input", "{warn}", "--output",
                                    "{root}/o.png"], "(warning: image size"),
    ("evaluate-sr-json-onto-set-image", ["evaluate-sr", "--method", "bicubic", "--root", "{root}/data", "--sets",
                                         "Small", "--no-lpips", "--json", "{root}/data/sr/Small/a.png"], "overwrite"),
    ("evaluate-sr-csv-and-json-one-file", ["evaluate-sr", "--method", "bicubic", "--root", "{root}/data", "--sets",
                                           "Small", "--no-lpips", "--json", "{root}/r.txt", "--csv", "{root}/r.txt"],
     "same file"),
]


@pytest.mark.parametrize("argv, keyword", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_file_gives_one_line_error(files, argv, keyword, capsys, monkeypatch, no_hang):
    monkeypatch.delenv("PERCEPTUAL_UTILS_DEBUG", raising=False)
    before = file_times(files["root"])
    line = one_error_line(*run_cli([a.format(**{k: str(v) for k, v in files.items()}) for a in argv], capsys))
    assert keyword.lower() in line.lower(), line
    assert file_times(files["root"]) == before  # nothing written, nothing destroyed


def test_library_warnings_fold_into_the_error_line_outside_pytest(files, tmp_path):
    """What a user sees (pytest records warnings itself): PIL's two-line warning was printed above
    the error; now stderr is the error line alone, the warning folded into it."""
    env = {k: v for k, v in os.environ.items() if k not in ("PERCEPTUAL_UTILS_DEBUG", "PYTHONWARNINGS")}
    proc = subprocess.run([sys.executable, "-m", "perceptual_utils", "stylize", "--model", str(files["style_model"]),
                           "--input", str(files["warn"]), "--output", str(tmp_path / "o.png")],
                          capture_output=True, text=True, env=env | {"OMP_NUM_THREADS": "1"}, timeout=120)
    line = one_error_line(proc.returncode, proc.stderr)
    assert "warning: image size" in line.lower() and "warn.png" in line


def _train_sr(out: Path, data: Path, *extra: str) -> list[str]:
    return ["train-sr", "--data", str(data), "--out", str(out), "--loss", "pixel", "--scale", "2", "--patch", "16",
            "--channels", "4", "--num-residual", "1", "--batch-size", "1", "--workers", "0", "--device", "cpu",
            "--preview-every", "1000", "--no-progress", *extra]


def test_full_disk_during_training_is_one_line_and_keeps_the_checkpoint(files, tmp_path, capsys, monkeypatch):
    from safetensors import SafetensorError

    real, calls = model_io.save_file, []

    def fills_up(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 1:
            return real(tensors, path, metadata=metadata)
        Path(path).write_bytes(b"half a checkpoint")  # what safetensors says on a full disk (measured on a tmpfs)
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(model_io, "save_file", fills_up)
    out = tmp_path / "run"
    line = one_error_line(*run_cli(_train_sr(out, files["root"] / "folder", "--steps", "4", "--checkpoint-every", "2"),
                                 capsys))
    assert "no space left on device" in line.lower()
    assert model_io.read_checkpoint_metadata(out / "checkpoint.safetensors")["step"] == 2  # the last good one
    assert not list(out.glob(".*.tmp"))


def test_training_clean_up_keeps_the_users_temporary_files(files, tmp_path, capsys):
    project = tmp_path / "project"
    mine = [project / "notes" / ".thesis.chapter3.tmp", project / ".draft.abcd1234.tmp",
            project / "old_run" / ".model.safetensors.perceptual-utils-abcd1234.tmp"]
    for p in mine:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("the user's")
    leftover = project / ".checkpoint.safetensors.perceptual-utils-q1w2e3r4.tmp"  # a killed run's
    leftover.write_text("half")
    code, err = run_cli(_train_sr(project, files["root"] / "folder", "--steps", "1"), capsys)
    assert code == 0, err
    assert all(p.read_text() == "the user's" for p in mine) and not leftover.exists()


def test_bench_json_on_a_full_disk_keeps_the_previous_file(files, tmp_path, capsys, monkeypatch):
    from perceptual_utils.style import timing

    monkeypatch.setattr(timing, "run_benchmark", lambda **kw: {"rows": []})
    monkeypatch.setattr(timing, "format_table", lambda result: "table")
    real = Path.write_text

    def full(self, text, *args, **kwargs):
        real(self, text[: len(text) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    target = tmp_path / "bench.json"
    real(target, '{"previous": true}')
    line = one_error_line(*run_cli(["bench", "--json", str(target), "--sizes", "16", "--no-train"], capsys))
    assert "no space left" in line.lower()
    assert json.loads(target.read_text()) == {"previous": True}  # whole, not half a new one
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # and no temporary left


def test_half_precision_export_that_overflows_is_refused(tmp_path):
    net = StyleTransferNet("modern", channels=4, num_residual=1)
    with torch.no_grad():
        next(net.parameters()).fill_(1e6)  # fine in float32, inf in float16
    with pytest.raises(model_io.ModelFileError, match="not finite in half precision"):
        model_io.save_model(net, tmp_path / "m.safetensors", half=True)
    assert not list(tmp_path.iterdir())
    model_io.save_model(net, tmp_path / "m.safetensors")  # full precision keeps it


# Every count option of every command: a base command line that would otherwise run, and the
# options where 0 means "off" (so only -1 is wrong). --seed takes any integer; --scale and --opset
# are a choice and a version, not counts.
BASES = {
    "gatys": "--content {img} --style {img} --output {root}/o.png --iterations 1",
    "invert": "--input {img} --layer relu2_2 --output {root}/o.png --iterations 1",
    "train-style": "--style {img} --data {root}/folder --out {root}/count_run --steps 1 --image-size 16",
    "train-sr": "--data {root}/folder --out {root}/count_run --loss pixel --steps 1 --patch 16 --scale 2",
    "stylize": "--model {style_model} --input {img} --output {root}/o.png",
    "upscale": "--model {sr_model} --input {img} --output {root}/o.png",
    "evaluate-sr": "--method bicubic --root {root}/data --sets Small --no-lpips",
    "bench": "--sizes 16 --no-train",
}
ZERO_OK = {"--tile", "--overlap", "--style-size", "--measure-iterations", "--workers", "--warmup-steps",
           "--grid-jitter", "--num-residual"}


def _count_options() -> list[tuple[str, str, str]]:
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    out = []
    for command, parser in sub.choices.items():
        for action in parser._actions:
            option = action.option_strings[0] if action.option_strings else None
            if action.type is int or getattr(action.type, "__name__", "") == "positive_int":
                if option in ("--seed", "--scale", "--opset"):  # any seed; a choice of 2, 4, 8; a version
                    continue
                out += [(command, option, "-1")] + ([] if option in ZERO_OK else [(command, option, "0")])
    return out


@pytest.mark.parametrize("command, option, value", _count_options(), ids=lambda x: str(x))
def test_every_count_option_refuses_zero_and_negative(files, command, option, value, capsys):
    assert command in BASES, f"a new command {command} with count options: add its base command line"
    argv = [command, *BASES[command].format(**{k: str(v) for k, v in files.items()}).split(), option, value]
    line = one_error_line(*run_cli(argv, capsys))
    assert option in line, line
