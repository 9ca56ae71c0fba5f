"""Flicker, measured: clips with a known camera motion and the temporal error of a stylisation.

A video stylised frame by frame flickers when the texture does not move with the scene: each frame
is painted afresh. To measure that without optical-flow estimates (whose own errors would be
counted as flicker), :func:`render_clip` films a still photo with a *known* camera: frame ``t``
shows the photo through an affine map ``A_t`` (pixel of the frame -> point of the photo), so the
true motion between any two frames is known exactly: the point seen at pixel ``p`` of frame
``t + 1`` is at ``A_t^{-1} A_{t+1} p`` in frame ``t``.

:func:`temporal_error` warps frame ``t`` (photo or stylised) onto frame ``t + 1`` with that map and
averages ``|warped_t - frame_{t+1}|`` over the pixels visible in both frames, in /255 (the
"warping error" of the video style transfer literature, e.g. Lai et al. 2018, *Learning Blind Video
Temporal Consistency*, with the true motion instead of estimated flow). For integer pans the warp
moves whole pixels, so the photos' own error is 0 up to float rounding; for sub-pixel motion the
bilinear resampling blurs, and the photos' own error is the floor that interpolation alone
causes. That floor is larger on a stylised frame, whose texture has more fine detail than the photo,
so :func:`clip_flicker` also films the photo stylised *once* along the same path: a perfectly
consistent "video" whose error is the stylised texture's own interpolation floor.

Camera paths (:data:`MOTIONS`): an integer pan (2 px per frame), a sub-pixel pan (0.4, 0.25 px), a
slow zoom (1% per frame) and hand-held jitter (independent per-frame offsets of 1.5 px and
rotations of 0.3 degrees, seeded).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .images import resize_short_side

#: The camera paths :func:`camera_path` knows.
MOTIONS = ("pan_int", "pan_subpixel", "zoom", "jitter")


def camera_path(motion: str, frames: int, seed: int = 0) -> torch.Tensor:
    """``(frames, 3, 3)`` affine maps, frame pixel -> photo pixel, relative to the frame's centre:
    ``A_t`` applied to ``(x - cx, y - cy, 1)`` gives the photo point minus the photo's centre
    (pixel centres at integer coordinates)."""
    if motion not in MOTIONS:
        raise ValueError(f"unknown motion {motion!r}; known: {', '.join(MOTIONS)}")
    if frames < 2:
        raise ValueError(f"a clip needs at least 2 frames, got {frames}")
    gen = torch.Generator().manual_seed(seed)
    maps = []
    for t in range(frames):
        scale, angle, dx, dy = 1.0, 0.0, 0.0, 0.0
        if motion == "pan_int":
            dx = 2.0 * t
        elif motion == "pan_subpixel":
            dx, dy = 0.4 * t, 0.25 * t
        elif motion == "zoom":  # zooming in: each frame sees 1% less of the photo
            scale = 0.99 ** t
        else:  # hand-held: small independent shakes around a fixed aim
            dx, dy = (1.5 * torch.randn(2, generator=gen)).tolist()
            angle = math.radians(0.3) * float(torch.randn(1, generator=gen))
        c, s = scale * math.cos(angle), scale * math.sin(angle)
        maps.append(torch.tensor([[c, -s, dx], [s, c, dy], [0.0, 0.0, 1.0]], dtype=torch.float64))
    return torch.stack(maps)


def _sample(image: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``image`` (C, H, W) at pixel coordinates ``coords`` (h, w, 2) as (x, y)."""
    h, w = image.shape[-2:]
    grid = torch.empty_like(coords, dtype=torch.float32)
    grid[..., 0] = ((coords[..., 0] + 0.5) / w * 2 - 1).float()  # align_corners=False: pixel centres
    grid[..., 1] = ((coords[..., 1] + 0.5) / h * 2 - 1).float()
    return F.grid_sample(image[None].float(), grid[None], mode="bilinear", padding_mode="border",
                         align_corners=False)[0]


def _frame_grid(height: int, width: int) -> torch.Tensor:
    """(h, w, 3) homogeneous pixel coordinates relative to the frame's centre, float64."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                            indexing="ij")
    return torch.stack([xs - (width - 1) / 2, ys - (height - 1) / 2, torch.ones_like(xs)], dim=-1)


def fit_photo(photo: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``photo`` scaled (with antialiasing) to cover 1.5x a frame of ``size`` ``(h, w)`` in both
    directions: room for every camera path of :data:`MOTIONS` over a few dozen frames."""
    h, w = size
    factor = max(1.5 * h / photo.shape[-2], 1.5 * w / photo.shape[-1])
    return resize_short_side(photo, math.ceil(min(photo.shape[-2:]) * factor))


def film(scene: torch.Tensor, path: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(T, 3, h, w)`` frames of ``scene`` (3, H, W), taken as it is, along ``path``
    (:func:`camera_path`); a path leaving the scene raises ``ValueError``."""
    h, w = size
    sh, sw = scene.shape[-2:]
    grid = _frame_grid(h, w)
    frames = []
    for a in path:
        pts = grid @ a.T
        coords = torch.stack([pts[..., 0] + (sw - 1) / 2, pts[..., 1] + (sh - 1) / 2], dim=-1)
        if coords[..., 0].min() < 0 or coords[..., 1].min() < 0 or coords[..., 0].max() > sw - 1 \
                or coords[..., 1].max() > sh - 1:
            raise ValueError(f"the camera path leaves the {sw}x{sh} scene; use fewer frames or a smaller frame")
        frames.append(_sample(scene, coords))
    return torch.stack(frames).clamp(0, 1)


def render_clip(photo: torch.Tensor, path: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Film ``photo`` (3, H, W), scaled by :func:`fit_photo`, along ``path``: ``(T, 3, h, w)`` frames."""
    return film(fit_photo(photo, size), path, size)


def warp_previous(previous: torch.Tensor, a_prev: torch.Tensor,
                  a_next: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame ``previous`` (C, h, w) moved onto the next frame's pixels: ``(warped, visible)``, where
    ``visible`` (h, w) marks the pixels whose scene point lies inside ``previous`` (both frames see it)."""
    h, w = previous.shape[-2:]
    pts = _frame_grid(h, w) @ (torch.linalg.inv(a_prev) @ a_next).T
    coords = torch.stack([pts[..., 0] + (w - 1) / 2, pts[..., 1] + (h - 1) / 2], dim=-1)
    eps = 1e-6  # an integer pan lands on exact pixel centres, up to float rounding
    visible = ((coords[..., 0] >= -eps) & (coords[..., 0] <= w - 1 + eps)
               & (coords[..., 1] >= -eps) & (coords[..., 1] <= h - 1 + eps))
    return _sample(previous, coords), visible


def temporal_error(frames: torch.Tensor, path: torch.Tensor) -> float:
    """Mean ``|warp(frame_t) - frame_{t+1}|`` over the pixels visible in both and over the frame pairs,
    in /255 (channels averaged). ``frames`` (T, 3, h, w) follow ``path`` (:func:`camera_path`)."""
    if frames.shape[0] != path.shape[0]:
        raise ValueError(f"{frames.shape[0]} frames but a path of {path.shape[0]}")
    errors = []
    for t in range(frames.shape[0] - 1):
        warped, visible = warp_previous(frames[t], path[t], path[t + 1])
        diff = (warped - frames[t + 1].float()).abs().mean(dim=0)
        errors.append(float(diff[visible].mean()) * 255)
    return sum(errors) / len(errors)


def clip_flicker(stylise: Callable[[torch.Tensor], torch.Tensor], photo: torch.Tensor,
                 motions: Sequence[str] = MOTIONS, frames: int = 8, size: tuple[int, int] = (144, 192),
                 seed: int = 0) -> dict[str, dict[str, float]]:
    """Temporal errors (/255) for each motion, with ``stylise`` applied to ``(T, 3, h, w)`` frames:

    - ``"photo"``: the photos' own (0 for integer pans; the interpolation floor otherwise);
    - ``"stylised"``: the clip stylised frame by frame;
    - ``"still"``: the photo stylised *once* (at :func:`fit_photo`'s size) and then filmed along the
      same path: perfectly consistent by construction, so its error is the interpolation floor of
      the stylised texture, and ``stylised - still`` is the flicker the frame-by-frame run adds.
    """
    scene = fit_photo(photo, size)
    still_scene = stylise(scene[None])[0]
    out = {}
    for motion in motions:
        path = camera_path(motion, frames, seed=seed)
        clip = film(scene, path, size)
        out[motion] = {"photo": temporal_error(clip, path), "stylised": temporal_error(stylise(clip), path),
                       "still": temporal_error(film(still_scene, path, size), path)}
    return out
