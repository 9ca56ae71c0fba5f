"""Run an image-to-image function over files and folders for the command line (stylize, upscale)."""
from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .errors import one_line
from .images import IMAGE_EXTENSIONS, ImageLoadError, list_images, load_image, save_image
from .model_io import ModelFileError
from .video import VideoError, is_video, list_videos, transform_video, video_output_path


class _Warnings:
    """The warnings (PIL, torch) emitted while one file is processed: folded into its error line by
    :meth:`note`; after a success :meth:`release` passes them on to the caller's handling (cli.main
    prints them one line each)."""

    def __init__(self) -> None:
        self._context = warnings.catch_warnings(record=True)
        self.caught: list[warnings.WarningMessage] = self._context.__enter__()
        self._noted = False

    def note(self) -> str:
        self._noted = True
        notes = dict.fromkeys(one_line(str(w.message).splitlines()[0]) for w in self.caught if str(w.message))
        return f" (warning: {'; '.join(notes)})" if notes else ""

    def release(self) -> None:
        self._context.__exit__(None, None, None)
        if not self._noted:
            for w in self.caught:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def expand_inputs(inputs: Sequence[str | Path], videos: bool = False) -> tuple[list[Path], list[str]]:
    """Files named directly plus the images (and, with ``videos``, the videos) inside named folders;
    returns (files, errors)."""
    files: list[Path] = []
    errors: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = list_images(p, recursive=False) + (list_videos(p) if videos else [])
            if not found:
                errors.append(f"{p}: folder has no image{' or video' if videos else ''} files")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        elif p.exists():  # a named pipe would hang the loader, a device never ends
            errors.append(f"{p}: is not a regular file (a named pipe, device or socket); give an image file")
        else:
            errors.append(f"{p}: no such file or folder")
    return files, errors


def output_path(source: Path, output: Path, single: bool) -> Path:
    """Where the result for ``source`` goes: ``output`` itself for a single input given a file
    name with an image extension, else ``output/<stem><ext>`` (PNG for formats we do not write;
    videos: :func:`.video.video_output_path`)."""
    if is_video(source):
        return video_output_path(source, output, single)
    if single and output.suffix.lower() in IMAGE_EXTENSIONS and not output.is_dir():
        return output
    ext = source.suffix.lower() if source.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp") else ".png"
    return output / f"{source.stem}{ext}"


def check_targets(inputs: Sequence[str | Path], files: Sequence[Path], output: Path, single: bool,
                  protected: Sequence[str | Path] = ()) -> str | None:
    """Why writing the results for ``files`` to ``output`` would destroy something, or ``None``:
    an output that is one of the inputs (or an input folder itself) or a ``protected`` file (the
    model), two inputs with the same output file, an output file name in a folder-like place (an
    existing file given as the folder for several inputs), or, for one input, an output name whose
    extension is no format we write (``o.xyz`` would otherwise become a folder ``o.xyz/``)."""
    if (single and output.suffix and not output.is_dir() and output.suffix.lower() not in IMAGE_EXTENSIONS
            and not is_video(output)):
        return (f"{output}: unknown image file extension {output.suffix!r}; use one of "
                f"{', '.join(IMAGE_EXTENSIONS)} (or an output folder name without an extension)")
    resolved = {Path(f).resolve(): f for f in files}
    for keep in protected:
        if Path(keep).is_file():
            resolved.setdefault(Path(keep).resolve(), Path(keep))
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
                   fn: Callable[[torch.Tensor], torch.Tensor], progress: bool = True,
                   video_batch: int | None = None, protected: Sequence[str | Path] = ()) -> int:
    """Load each input image, apply ``fn`` to its ``(3, H, W)`` tensor, save the result.

    With ``video_batch`` (frames per call), video files (:data:`.video.VIDEO_EXTENSIONS`, named or in
    folders) go through :func:`.video.transform_video` with ``fn`` on ``(B, 3, H, W)`` batches of frames.

    A file that cannot be read or processed is reported on one line on stderr (with the warnings
    libraries emitted for it folded in, and control characters of its name escaped) and the others
    are still processed. A :class:`~perceptual_utils.model_io.ModelFileError` (a model whose output
    is not finite) stops at once: it would fail every image. ``protected`` files (the model) are
    never written. Returns the exit code: 0 if every input succeeded, 1 otherwise.
    """
    files, errors = expand_inputs(inputs, videos=video_batch is not None)
    output = Path(output)
    single = len(files) == 1 and len(inputs) == 1 and not Path(inputs[0]).is_dir()
    problem = check_targets(inputs, files, output, single, protected)
    if problem:  # before any work: nothing is written
        print(f"error: {one_line(problem)}", file=sys.stderr)
        return 1
    for message in errors:
        print(f"error: {one_line(message)}", file=sys.stderr)
    failed = len(errors)
    for source in tqdm(files, desc="images", unit="img", disable=not progress or len(files) < 2):
        caught = _Warnings()
        try:
            if video_batch is not None and is_video(source):
                target = transform_video(source, output_path(source, output, single), fn,
                                         batch_size=video_batch, progress=progress)
            else:
                target = save_image(fn(load_image(source)), output_path(source, output, single))
            print(one_line(f"{source} -> {target}"))
        except ModelFileError:
            raise
        except (ImageLoadError, VideoError) as exc:  # its message already names the file
            print(f"error: {one_line(str(exc))}{caught.note()}", file=sys.stderr)
            failed += 1
        except (ValueError, RuntimeError, OSError) as exc:
            # RuntimeError covers torch failures on one image (e.g. out of memory): report, go on.
            print(f"error: {one_line(f'{source}: {str(exc).splitlines()[0]}')}{caught.note()}", file=sys.stderr)
            failed += 1
        finally:
            caught.release()
    if not files and not errors:
        print("error: no input images", file=sys.stderr)
        return 1
    return 1 if failed else 0
