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
    if single and output.suffix.lower() in IMAGE_EXTENSIONS and not output.is_dir():
        return output
    ext = source.suffix.lower() if source.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp") else ".png"
    return output / f"{source.stem}{ext}"


def check_targets(inputs: Sequence[str | Path], files: Sequence[Path], output: Path, single: bool) -> str | None:
    """Why writing the results for ``files`` to ``output`` would destroy something, or ``None``:
    an output that is one of the inputs (or an input folder itself), two inputs with the same
    output file, or an output file name in a folder-like place (an existing file given as the
    folder for several inputs)."""
    resolved = {Path(f).resolve(): f for f in files}
    for item in inputs:
        if Path(item).is_dir() and Path(item).resolve() == output.resolve():
            return (f"{output}: output folder is the input folder {item}; results would overwrite "
                    f"the originals (choose another --output)")
    if not single and output.exists() and not output.is_dir():
        return f"{output}: is an existing file; several inputs need an output folder"
    seen: dict[Path, Path] = {}
    for source in files:
        target = output_path(source, output, single).resolve()
        if target in resolved:
            return (f"{resolved[target]}: output would overwrite this input file (choose another --output)")
        if target in seen:
            return f"{seen[target]} and {source}: both would be written to {target} (rename one)"
        seen[target] = source
    return None


def process_images(inputs: Sequence[str | Path], output: str | Path,
                   fn: Callable[[torch.Tensor], torch.Tensor], progress: bool = True) -> int:
    """Load each input image, apply ``fn`` to its ``(3, H, W)`` tensor, save the result.

    A file that cannot be read or processed is reported on one line on stderr and the others are
    still processed. Returns the exit code: 0 if every input succeeded, 1 otherwise.
    """
    files, errors = expand_inputs(inputs)
    output = Path(output)
    single = len(files) == 1 and len(inputs) == 1 and not Path(inputs[0]).is_dir()
    problem = check_targets(inputs, files, output, single)
    if problem:  # before any work: nothing is written
        print(f"error: {problem}", file=sys.stderr)
        return 1
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
        except (ValueError, RuntimeError, OSError) as exc:
            # RuntimeError covers torch failures on one image (e.g. out of memory): report, go on.
            print(f"error: {source}: {str(exc).splitlines()[0]}", file=sys.stderr)
            failed += 1
    if not files and not errors:
        print("error: no input images", file=sys.stderr)
        return 1
    return 1 if failed else 0
