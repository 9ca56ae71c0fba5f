"""Run an image-to-image function over files and folders for the command line (stylize, upscale)."""
from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .images import IMAGE_EXTENSIONS, ImageLoadError, list_images, load_image, save_image


def expand_inputs(inputs: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """Files named directly plus the images inside named folders; returns (files, errors)."""
    files: list[Path] = []
    errors: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = list_images(p, recursive=False)
            if not found:
                errors.append(f"{p}: folder has no image files")
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            errors.append(f"{p}: no such file or folder")
    return files, errors


def output_path(source: Path, output: Path, single: bool) -> Path:
    """Where the result for ``source`` goes: ``output`` itself for a single input given a file
    name with an image extension, else ``output/<stem><ext>`` (PNG for formats we do not write)."""
    if single and output.suffix.lower() in IMAGE_EXTENSIONS:
        return output
    ext = source.suffix.lower() if source.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp") else ".png"
    return output / f"{source.stem}{ext}"


def process_images(inputs: Sequence[str | Path], output: str | Path,
                   fn: Callable[[torch.Tensor], torch.Tensor], progress: bool = True) -> int:
    """Load each input image, apply ``fn`` to its ``(3, H, W)`` tensor, save the result.

    A file that cannot be read or processed is reported on one line on stderr and the others are
    still processed. Returns the exit code: 0 if every input succeeded, 1 otherwise.
    """
    files, errors = expand_inputs(inputs)
    output = Path(output)
    single = len(files) == 1 and len(inputs) == 1 and not Path(inputs[0]).is_dir()
    for message in errors:
        print(f"error: {message}", file=sys.stderr)
    failed = len(errors)
    for source in tqdm(files, desc="images", unit="img", disable=not progress or len(files) < 2):
        try:
            result = fn(load_image(source))
            target = save_image(result, output_path(source, output, single))
            print(f"{source} -> {target}")
        except ImageLoadError as exc:  # its message already names the file
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
        except (ValueError, RuntimeError) as exc:
            # RuntimeError covers torch failures on one image (e.g. out of memory): report, go on.
            print(f"error: {source}: {str(exc).splitlines()[0]}", file=sys.stderr)
            failed += 1
    if not files and not errors:
        print("error: no input images", file=sys.stderr)
        return 1
    return 1 if failed else 0
