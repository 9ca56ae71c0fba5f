"""Helpers several test files share, imported as ``helpers`` (pytest puts this folder on ``sys.path``:
it has no ``__init__.py``).

- The bad-input probes (``test_bad_inputs.py``, ``test_bad_inputs_files.py``): tiny images and models
  to feed the command line, and running it in-process to read its one error line.
- Tiny style training (``test_multistyle.py``, ``test_style_add_style.py``): four COCO photos at 40 px and
  a 32 px preview.
- The notebook exercises' checkers (``test_teaching_exercises_*.py``): run one quietly, and check that
  it names a typical mistake with that mistake's hint.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from perceptual_utils import cli, model_io
from perceptual_utils.images import center_crop, list_images, load_image, resize_short_side, save_image
from perceptual_utils.sr.net import SuperResolutionNet
from perceptual_utils.style.net import StyleTransferNet


def tiny_training_photos(data_root: Path, root: Path):
    """Four photos of the data root's COCO sample scaled to 40 px in ``root/train``, and a 32 px crop of
    chicago.jpg as the preview: enough for a training run of a few steps in seconds."""
    for path in list_images(data_root / "train" / "coco_mini")[:4]:
        save_image(resize_short_side(load_image(path), 40), root / "train" / f"{path.stem}.png")
    preview = center_crop(resize_short_side(load_image(data_root / "content" / "chicago.jpg"), 32), 32)
    return root / "train", preview


def png(path: Path, w: int = 24, h: int = 20, seed: int = 0) -> Path:
    """A ``w x h`` PNG of random colours (its folder made as needed)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def png_claiming(path: Path, side: int, colour_type: int) -> Path:
    """A tiny PNG whose header claims ``side x side`` px (PNG ``colour_type``: 0 grey, 2 RGB) over a
    few bytes of truncated data: PIL's size checks (warning at 89 MP, error at 179 MP) see the claim."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def tiny_models(root: Path) -> dict[str, Path]:
    """``{"style_model": ..., "sr_model": ...}``: untrained 4-channel networks saved under ``root``."""
    return {"style_model": model_io.save_model(StyleTransferNet("modern", channels=4, num_residual=1),
                                               root / "style.safetensors"),
            "sr_model": model_io.save_model(SuperResolutionNet(2, channels=4, num_residual=1), root / "sr.safetensors")}


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """``(exit code, stderr)`` of ``python -m perceptual_utils argv``, run in-process."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    return code, capsys.readouterr().err


def one_error_line(code, err: str) -> str:
    """The one line ``error: ...`` of a failed command (asserting it failed and printed only that)."""
    lines = err.strip().splitlines()
    assert code not in (0, None), err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def file_times(root: Path) -> dict[Path, int]:
    """Every file below ``root`` with its modification time: equal before and after a refused command
    when it wrote and destroyed nothing."""
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def check(checker, answer):
    """An exercise's checker run quietly on ``answer``: its ``CheckResult``."""
    return checker(answer, verbose=False)


def assert_names_the_mistake(checker, answer, mistake: str, catalogue: dict) -> None:
    """``checker`` refuses ``answer`` as the typical mistake ``mistake`` and gives its hint from the
    exercise's ``catalogue`` (``{mistake: (hint, ...)}``)."""
    r = check(checker, answer)
    assert not r.passed and r.mistake == mistake and r.hint == catalogue[mistake][0]
