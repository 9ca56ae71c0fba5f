"""Video in and out: decode a clip, transform its frames in batches, encode it again with its audio.

Used by ``stylize`` (and ``upscale``) on video files, by the live panel (:mod:`.teaching.live`) and by
``benchmarks/video_flicker.py``. Built on PyAV, FFmpeg's libraries bundled in PyAV's wheels (the video
backend torchvision uses), so no system FFmpeg is needed.

What :func:`transform_video` keeps and why:

- **timing**: every output frame keeps its input frame's timestamp (in the input stream's time base),
  so the frame rate, variable frame rates included, and the sync with the audio are those of the input;
- **audio**: the first audio stream is copied packet by packet (remuxed, not re-encoded, so it is
  bit-identical); only a codec the output container cannot hold (e.g. Vorbis into ``.mp4``) is
  re-encoded, to AAC;
- **picture**: H.264 (libx264, CRF 18, visually lossless for most content) in ``yuv420p``, the format
  every player decodes. ``yuv420p`` needs even sides, so an odd side loses its last pixel row/column.

Not kept: subtitles, data streams, further audio streams, and the rotation flag phones write (the
frames are stylised as stored, so a clip shot in portrait comes out as stored, on its side).

The output is written atomically (:func:`~perceptual_utils.model_io.atomic_write`: a temporary file in
the same folder, then ``os.replace``), so a failure never leaves a partial video. A file that is not a
readable video raises :class:`VideoError`, a ``ValueError`` the command line prints on one line.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .images import IMAGE_EXTENSIONS
from .model_io import atomic_write

#: Extensions read as videos (what the command line and folder listings treat as one).
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
#: Containers written, by extension; another input extension is written as ``.mp4``.
OUTPUT_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
#: Frames per forward pass by default: batching amortises per-call overhead; more buys little on a CPU.
DEFAULT_BATCH = 4
#: A batch never holds more pixels than this (about four 1 MP frames): a 1080p clip runs 2 frames per
#: pass, a 4K one 1, so the network's activations stay the size of one large image, as for images.
MAX_BATCH_PIXELS = 4 * 1024 * 1024
#: libx264 quality: CRF 18 is x264's "visually lossless" point (x264 documentation); 23 is its default.
CRF = 18


class VideoError(ValueError):
    """A file that is not a readable or supported video; the message names the file, on one line."""


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` has a video extension (:data:`VIDEO_EXTENSIONS`)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def list_videos(folder: str | os.PathLike) -> list[Path]:
    """Video files directly inside ``folder``, sorted."""
    return sorted(p for p in Path(folder).glob("*") if p.is_file() and is_video(p))


def video_output_path(source: Path, output: Path, single: bool) -> Path:
    """Where the result for video ``source`` goes: ``output`` itself for a single input named with a
    written video extension, else ``output/<stem><ext>`` (``.mp4`` for containers we do not write)."""
    if single and output.suffix.lower() in OUTPUT_FORMATS and not output.is_dir():
        return output
    if single and is_video(output):
        _container_format(output)  # a video extension we do not write (.avi, .webm): say so
    if single and output.suffix.lower() in IMAGE_EXTENSIONS:
        raise VideoError(f"{output}: {source} is a video; name a video file ({', '.join(OUTPUT_FORMATS)}) "
                         f"or a folder as --output")
    ext = source.suffix.lower() if source.suffix.lower() in OUTPUT_FORMATS else ".mp4"
    return output / f"{source.stem}{ext}"


def _av():
    import av  # here, not at the top: only video work needs PyAV (the image commands import without it)

    return av


def _reason(exc: BaseException) -> str:
    """FFmpeg's message without the file name PyAV appends (the caller names the file)."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).splitlines()[0].rstrip(".")


def _open_input(path: str | os.PathLike):
    """``(container, video_stream, audio_stream or None)``, or :class:`VideoError`."""
    av = _av()
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path}: not a readable video ({_reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: has no video stream")
    video = container.streams.video[0]
    if video.codec_context is None or not video.codec_context.width:
        codec = video.codec_context.name if video.codec_context is not None else "unknown"
        container.close()
        raise VideoError(f"{path}: unsupported video stream (codec {codec})")
    audio = container.streams.audio[0] if container.streams.audio else None
    return container, video, audio


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` reads from a video file's headers."""
    width: int
    height: int
    fps: Fraction
    frames: int          # from the header; 0 when the container does not say
    has_audio: bool
    duration: float | None  # seconds, None when unknown


def probe(path: str | os.PathLike) -> VideoInfo:
    """Size, frame rate, frame count and audio of a video file (:class:`VideoError` if unreadable)."""
    container, video, audio = _open_input(path)
    try:
        fps = video.average_rate or video.guessed_rate or Fraction(0)
        duration = float(video.duration * video.time_base) if video.duration else (
            container.duration / 1e6 if container.duration else None)
        return VideoInfo(video.codec_context.width, video.codec_context.height, Fraction(fps),
                         int(video.frames or 0), audio is not None, duration)
    finally:
        container.close()


def _to_tensor(arrays: list[np.ndarray]) -> torch.Tensor:
    """HxWx3 uint8 arrays -> (B, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255)


def _to_arrays(batch: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] -> (B, H, W, 3) uint8, sides cropped to even (yuv420p, see module doc)."""
    h, w = batch.shape[-2] // 2 * 2, batch.shape[-1] // 2 * 2
    if h == 0 or w == 0:
        raise VideoError(f"frames of {batch.shape[-1]}x{batch.shape[-2]} px are too small to encode")
    out = batch[..., :h, :w].detach().float().cpu().clamp(0, 1).mul(255).round_().to(torch.uint8)
    return out.permute(0, 2, 3, 1).contiguous().numpy()


def read_frames(path: str | os.PathLike, batch_size: int = 1, max_frames: int | None = None) -> Iterator[torch.Tensor]:
    """The frames of a video as ``(B, 3, H, W)`` float tensors in [0, 1], ``batch_size`` at a time
    (the last batch may be smaller); at most ``max_frames`` frames."""
    av = _av()
    container, video, _ = _open_input(path)
    pending: list[np.ndarray] = []
    count = 0
    try:
        for frame in container.decode(video):
            pending.append(frame.to_ndarray(format="rgb24"))
            count += 1
            if len(pending) == batch_size:
                yield _to_tensor(pending)
                pending = []
            if max_frames is not None and count >= max_frames:
                break
        if pending:
            yield _to_tensor(pending)
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path}: cannot decode ({_reason(exc)})") from None
    finally:
        container.close()


def _container_format(path: Path) -> str:
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise VideoError(f"{path}: cannot write {path.suffix or 'files without an extension'} videos; "
                         f"use one of {', '.join(OUTPUT_FORMATS)}")
    return fmt


def _open_output(tmp: str, fmt: str):
    av = _av()
    # faststart moves the index to the front so a browser (or the notebook) plays while loading.
    options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
    return av.open(tmp, "w", format=fmt, options=options)


def _add_video_stream(out, rate: Fraction, width: int, height: int, time_base: Fraction | None = None):
    stream = out.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    if time_base is not None:  # the input's time base: its timestamps are kept exactly
        stream.codec_context.time_base = time_base
    # x264's own threads follow torch's setting (OMP_NUM_THREADS=1 on a shared machine means one).
    stream.codec_context.options = {"crf": str(CRF), "preset": "medium", "threads": str(torch.get_num_threads())}
    return stream


def write_video(frames: Iterable[torch.Tensor], path: str | os.PathLike, fps: float | Fraction = 25) -> Path:
    """Encode frames (each ``(3, H, W)`` or a ``(B, 3, H, W)`` batch, in [0, 1]) as an H.264 video
    at ``fps``, atomically. Returns the path."""
    av = _av()
    path = Path(path)
    fmt = _container_format(path)
    rate = Fraction(fps).limit_denominator(1001)

    def write(tmp: str) -> None:
        out = _open_output(tmp, fmt)
        stream = None
        try:
            for batch in frames:
                arrays = _to_arrays(batch[None] if batch.dim() == 3 else batch)
                if stream is None:
                    stream = _add_video_stream(out, rate, arrays.shape[2], arrays.shape[1])
                for array in arrays:
                    out.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
            if stream is None:
                raise VideoError(f"{path}: no frames to write")
            out.mux(stream.encode(None))
        finally:
            out.close()

    return atomic_write(path, write)


def _batch_limit(batch_size: int, width: int, height: int) -> int:
    return max(1, min(int(batch_size), MAX_BATCH_PIXELS // max(1, width * height)))


def transform_video(source: str | os.PathLike, target: str | os.PathLike,
                    fn: Callable[[torch.Tensor], torch.Tensor], batch_size: int = DEFAULT_BATCH,
                    progress: bool = True) -> Path:
    """Apply ``fn`` (``(B, 3, H, W)`` -> ``(B, 3, H', W')``, RGB in [0, 1]) to every frame of
    ``source`` and write ``target`` with the same timing and audio (see the module docstring).

    Frames go through ``fn`` ``batch_size`` at a time (fewer for large frames: :data:`MAX_BATCH_PIXELS`);
    a tqdm bar shows frames and frames/s. ``target`` is written atomically.

    Raises:
        VideoError: ``source`` is not a readable video, or ``target``'s extension is not written.
    """
    av = _av()
    source, target = Path(source), Path(target)
    fmt = _container_format(target)
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    container, video, audio = _open_input(source)
    rate = Fraction(video.average_rate or video.guessed_rate or 25)
    per_batch = _batch_limit(batch_size, video.codec_context.width, video.codec_context.height)
    # Decoder threads: as many as torch uses, for the same reason as x264's (a shared machine).
    video.thread_type, video.codec_context.thread_count = "AUTO", torch.get_num_threads()
    bar = tqdm(total=video.frames or None, unit="frame", desc=source.name, disable=not progress, leave=False)

    def write(tmp: str) -> None:
        out = _open_output(tmp, fmt)
        state = {"stream": None, "audio_out": None, "encoder": None}
        waiting_audio: list = []   # audio packets demuxed before the video stream exists (see below)
        frames: list = []          # decoded frames of the batch being filled
        count = [0]

        def audio_stream():
            if audio is None:
                return None
            if state["audio_out"] is None:
                codec = audio.codec_context.name
                if codec in out.supported_codecs:  # remux: the packets are copied as they are
                    state["audio_out"] = out.add_stream_from_template(audio)
                else:  # the container cannot hold this codec: re-encode (decode, then AAC)
                    state["audio_out"] = out.add_stream("aac", rate=audio.codec_context.sample_rate)
                    state["encoder"] = True
            return state["audio_out"]

        def mux_audio(packet) -> None:
            stream = state["audio_out"]
            if state["encoder"]:
                for aframe in packet.decode():
                    aframe.pts = None  # the encoder numbers its own samples
                    out.mux(stream.encode(aframe))
            elif packet.dts is not None:  # the demuxer's final empty packet has none
                packet.stream = stream
                out.mux(packet)

        def flush_frames() -> None:
            if not frames:
                return
            result = fn(_to_tensor([f.to_ndarray(format="rgb24") for f in frames]))
            if result.dim() != 4 or result.shape[0] != len(frames) or result.shape[1] != 3:
                raise ValueError(f"the frame function returned shape {tuple(result.shape)} for "
                                 f"{len(frames)} frames; expected ({len(frames)}, 3, H, W)")
            arrays = _to_arrays(result)
            if state["stream"] is None:
                # The output size is known only now (fn may upscale), and every stream must exist before
                # the first packet is written: so audio demuxed so far has waited, and goes now.
                state["stream"] = _add_video_stream(out, rate, arrays.shape[2], arrays.shape[1], video.time_base)
                audio_stream()
                for packet in waiting_audio:
                    mux_audio(packet)
                waiting_audio.clear()
            for frame, array in zip(frames, arrays):
                new = av.VideoFrame.from_ndarray(array, format="rgb24")
                # The input's timestamp (VFR and A/V sync kept); a frame without one gets its slot at the rate.
                new.pts = frame.pts if frame.pts is not None else round(count[0] / rate / video.time_base)
                new.time_base = video.time_base
                count[0] += 1
                out.mux(state["stream"].encode(new))
            bar.update(len(frames))
            frames.clear()

        try:
            streams = [video] + ([audio] if audio is not None else [])
            for packet in container.demux(*streams):
                if packet.stream.type == "audio":
                    if state["stream"] is None:
                        waiting_audio.append(packet)
                    else:
                        mux_audio(packet)
                    continue
                for frame in packet.decode():
                    frames.append(frame)
                    if len(frames) >= per_batch:
                        flush_frames()
            flush_frames()
            if state["stream"] is None:
                raise VideoError(f"{source}: has no decodable video frames")
            out.mux(state["stream"].encode(None))
            if state["encoder"]:
                out.mux(state["audio_out"].encode(None))
        except av.error.FFmpegError as exc:
            raise VideoError(f"{source}: cannot transcode ({_reason(exc)})") from None
        finally:
            out.close()

    try:
        return atomic_write(target, write)
    finally:
        bar.close()
        container.close()
