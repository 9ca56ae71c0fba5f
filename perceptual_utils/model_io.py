"""Model files and training checkpoints, stored as safetensors (never pickle).

A *model file* is one ``.safetensors`` file whose metadata names the network kind, its
constructor arguments and the training settings, so it can be rebuilt with nothing else::

    save_model(net, "starry.safetensors", training={"style": "starry_night_crop.jpg", ...})
    net = load_model("starry.safetensors", kind="style_transfer")

A *checkpoint* additionally holds the optimiser state, the step and the RNG states, and is
replaced atomically (write to a temporary file, fsync, rename), so an interrupted run never
leaves a half-written file behind.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

FORMAT = "perceptual_utils/1"
#: kind -> "module:Class"; the class takes its metadata ``config`` as keyword arguments and
#: exposes the same dict as ``.config``.
MODEL_KINDS = {
    "style_transfer": "perceptual_utils.style.net:StyleTransferNet",
    "super_resolution": "perceptual_utils.sr.net:SuperResolutionNet",
}


class ModelFileError(ValueError):
    """A model or checkpoint file is missing, corrupted, or of the wrong kind."""


#: Metadata key of the sha256 over the tensors (:func:`tensors_digest`), written by every save and
#: checked by every load; files written before it existed (no key) still load.
DIGEST_KEY = "tensor_sha256"

#: Sane ranges for the integer config entries of a model file (a crafted ``channels: 3000`` or
#: ``num_residual: 1e7`` would otherwise allocate gigabytes or hang before anything is checked).
#: ``num_styles``: styles of a multi-style (conditional instance norm) style network.
CONFIG_RANGES: dict[str, tuple[int, int]] = {"channels": (1, 1024), "num_residual": (0, 64), "scale": (2, 8),
                                             "num_styles": (1, 64)}


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the sorted ``name|dtype|shape`` of every tensor and its raw bytes."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


#: In the name of every temporary file :func:`atomic_write` makes (``.<name>.perceptual-utils-<random>.tmp``),
#: so a clean-up (:func:`perceptual_utils.run_folder.clean_stale_temporaries`) removes only files this
#: package made, never a user's own ``.notes.draft.tmp``.
TEMPORARY_MARK = ".perceptual-utils-"


def atomic_write(path: str | os.PathLike, write_fn) -> Path:
    """Call ``write_fn(tmp_path)`` then atomically move the temporary file onto ``path``.

    A failed write (a full disk included) leaves ``path`` as it was and no temporary behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TEMPORARY_MARK}", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write_fn(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        # mkstemp makes owner-only files; give the result the permissions of a plain open()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {k: json.dumps(v) for k, v in {**metadata, DIGEST_KEY: tensors_digest(tensors)}.items()}
    return atomic_write(path, lambda tmp: _save_file(tensors, tmp, meta))


def _save_file(tensors: dict[str, torch.Tensor], path: str, meta: dict[str, str]) -> None:
    """safetensors' ``save_file``, with its I/O failures as ``OSError``: it reports a full disk as
    ``SafetensorError('... I/O error: No space left on device (os error 28)')`` (measured on a
    full tmpfs), which is no ``OSError``, so the command line would print a traceback."""
    try:
        save_file(tensors, path, metadata=meta)
    except Exception as exc:
        code = re.search(r"\(os error (\d+)\)", str(exc))
        if code is None:
            raise
        raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), path) from None


def non_finite_tensors(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding NaN or +-inf (a diverged training, or float32
    weights beyond float16's 65504 stored in half precision)."""
    return sorted(k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all()))


def check_finite_output(output: torch.Tensor, what: str = "the network") -> torch.Tensor:
    """``output`` unchanged if every value is finite, else a one-line :class:`ModelFileError`: finite
    weights can still overflow (to inf in float16, or NaN after a norm of inf), and clamping would
    turn that into a flat black or white picture written with exit code 0."""
    if not bool(torch.isfinite(output).all()):
        raise ModelFileError(f"{what}'s output is not finite (NaN or inf): its weights overflow on this input "
                             f"(a diverged or damaged model; on CUDA try --no-half); nothing was written")
    return output


def _read_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    p = Path(path)
    if p.is_dir():
        hint = " (a run folder keeps its model in model.safetensors)" if (p / "model.safetensors").is_file() else ""
        raise ModelFileError(f"{p}: is a folder, not a model file{hint}")
    if not p.is_file():
        raise ModelFileError(f"{p}: no such model file")
    try:
        with safe_open(str(p), framework="pt", device="cpu") as fh:
            raw_meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        meta = {k: json.loads(v) for k, v in raw_meta.items()}
    except Exception as exc:
        raise ModelFileError(f"{p}: not a readable safetensors model file ({type(exc).__name__}: {exc})") from None
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{p}: not a perceptual_utils model file (no '{FORMAT}' metadata)")
    stored = meta.pop(DIGEST_KEY, None)
    if stored is not None and stored != tensors_digest(tensors):
        raise ModelFileError(f"{p}: corrupted file: the tensors do not match the digest stored when it "
                             f"was saved (flipped or altered bytes)")
    return tensors, meta


def stored_digest(path: str | os.PathLike) -> str | None:
    """The :func:`tensors_digest` a model file stored when it was saved, read from its header
    without loading or hashing the tensors (``None`` for a file saved without one). To know which
    weights a measurement belongs to; :func:`load_model` is what checks the tensors against it."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            raw = (fh.metadata() or {}).get(DIGEST_KEY)
    except Exception as exc:
        raise ModelFileError(f"{path}: not a readable safetensors model file ({type(exc).__name__}: {exc})") from None
    return json.loads(raw) if raw is not None else None


def read_checkpoint_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's metadata (step, config, ``extra``) without reading its tensors."""
    p = Path(path)
    try:
        with safe_open(str(p), framework="pt", device="cpu") as fh:
            raw = fh.metadata() or {}
        meta = {k: json.loads(v) for k, v in raw.items()}
    except Exception as exc:
        raise ModelFileError(f"{p}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if meta.get("kind") != "checkpoint":
        raise ModelFileError(f"{p}: is not a training checkpoint")
    return meta


def _model_class(kind: str) -> type:
    if kind not in MODEL_KINDS:
        raise ModelFileError(f"unknown model kind {kind!r}; known: {', '.join(MODEL_KINDS)}")
    module_name, cls_name = MODEL_KINDS[kind].split(":")
    return getattr(importlib.import_module(module_name), cls_name)


def check_config(kind: str, config: Any) -> dict[str, Any]:
    """Validate a model file's ``config`` before anything is built: a dict whose keys are the
    constructor's arguments, integers in :data:`CONFIG_RANGES`, strings for the other options,
    and arguments the constructor accepts.

    Raises:
        ModelFileError: the first problem, on one line.
    """
    cls = _model_class(kind)
    if not isinstance(config, dict):
        raise ModelFileError(f"config must be a JSON object, got {type(config).__name__}")
    known = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ModelFileError(f"unknown config keys {unknown} for a {kind!r} model; known: {', '.join(known)}")
    for key, value in config.items():
        if key in CONFIG_RANGES:
            lo, hi = CONFIG_RANGES[key]
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ModelFileError(f"config {key}={value!r} is out of range (an integer in [{lo}, {hi}])")
        elif value is not None and not isinstance(value, (str, bool)):
            raise ModelFileError(f"config {key}={value!r} must be a string or a boolean")
    try:
        with torch.device("meta"):  # no memory: only checks the arguments and gives the shapes
            cls(**config)
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"invalid config ({str(exc).splitlines()[0]})") from None
    return config


def build_model(kind: str, config: dict[str, Any]) -> nn.Module:
    """Construct an untrained network of ``kind`` from its config dict (validated first)."""
    check_config(kind, config)
    return _model_class(kind)(**config)


def _check_shapes(kind: str, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """The stored tensors have exactly the names and shapes of the architecture (built on the
    meta device, which allocates nothing)."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in _model_class(kind)(**config).state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    if missing or extra:
        raise ModelFileError(f"weights do not fit the stored architecture (missing {missing[:3]}, "
                             f"unexpected {extra[:3]})")
    for k, shape in expected.items():
        if got[k] != shape:
            raise ModelFileError(f"weights do not fit the stored architecture ({k}: shape {got[k]}, expected {shape})")


def model_kind(model: nn.Module) -> str:
    for kind, target in MODEL_KINDS.items():
        module_name, cls_name = target.split(":")
        if type(model).__name__ == cls_name and type(model).__module__ == module_name:
            return kind
    raise ModelFileError(f"{type(model).__name__} is not a model kind this package can save")


def save_model(model: nn.Module, path: str | os.PathLike, training: dict[str, Any] | None = None,
               half: bool = False) -> Path:
    """Write ``model`` (a network with a ``.config`` dict) as one safetensors file.

    ``half=True`` stores float tensors in float16 (a few MB per network); they are loaded back
    as float32.
    """
    model = model.module if hasattr(model, "module") else model  # unwrap DDP
    state = model.state_dict()
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        overflow = non_finite_tensors(state)
        if overflow:  # a file that no command could load: refuse it before writing
            raise ModelFileError(f"{path}: {overflow[0]} is not finite in half precision (NaN, or values "
                                 f"beyond float16's 65504); save it in full precision")
    meta = {"format": FORMAT, "kind": model_kind(model), "config": dict(model.config), "training": training or {}}
    return _save_tensors(path, state, meta)


def read_model_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a model file (kind, config, training) without building the network."""
    return _read_tensors(path)[1]


def replace_training_info(path: str | os.PathLike, training: dict[str, Any]) -> Path:
    """Rewrite the ``training`` metadata of the model file ``path`` (a stale reproducing command or
    summary), atomically; its tensors, checked against their digest first, and the digest stay as they are."""
    tensors, meta = _read_tensors(path)
    return _save_tensors(path, tensors, {**meta, "training": training})


def load_model(path: str | os.PathLike, kind: str | None = None, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a network from the model file ``path``, in eval mode.

    A path only: the name of a shipped model (``"starry_night"``) is resolved a level up, by
    :func:`perceptual_utils.shipped_models.load_model` (``pu.load_model``), which this module must not
    know of (it reads its model files through this one).

    Raises:
        ModelFileError: missing or corrupted file, or a file of another ``kind`` than asked for.
    """
    tensors, meta = _read_tensors(path)
    if kind is not None and meta.get("kind") != kind:
        raise ModelFileError(f"{path}: is a {meta.get('kind', 'unknown')!r} model, expected a {kind!r} model")
    try:
        check_config(meta.get("kind"), meta.get("config", {}))
        _check_shapes(meta["kind"], meta.get("config", {}), tensors)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    bad = non_finite_tensors(tensors)
    if bad:  # checked with or without a digest: a digest only proves the bytes are as saved
        raise ModelFileError(f"{path}: weights are not finite (NaN or inf in {bad[0]}"
                             f"{f' and {len(bad) - 1} more' if len(bad) > 1 else ''}): a diverged training "
                             f"or a float16 overflow; use an earlier checkpoint or retrain")
    model = build_model(meta["kind"], meta.get("config", {}))
    state = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFileError(f"{path}: weights do not fit the stored architecture ({str(exc).splitlines()[0]})") from None
    model.training_info = meta.get("training", {})
    return model.to(device).eval()


# ----------------------------------------------------------------------------- checkpoints

def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None,
                    step: int, extra: dict[str, Any] | None = None,
                    extra_tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Atomically write a training checkpoint: model, optimiser, step, torch RNG, and ``extra`` (JSON)."""
    model = model.module if hasattr(model, "module") else model
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    optim_meta: dict[str, Any] = {}
    if optimizer is not None:
        osd = optimizer.state_dict()
        optim_meta = {"param_groups": osd["param_groups"], "state": {}}
        for idx, state in osd["state"].items():
            optim_meta["state"][str(idx)] = {}
            for key, value in state.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim.{idx}.{key}"] = value
                    optim_meta["state"][str(idx)][key] = "tensor"
                else:
                    optim_meta["state"][str(idx)][key] = value
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    for k, v in (extra_tensors or {}).items():
        tensors[f"extra.{k}"] = v
    meta = {"format": FORMAT, "kind": "checkpoint", "model_kind": model_kind(model),
            "config": dict(model.config), "step": int(step), "optimizer": optim_meta, "extra": extra or {}}
    return _save_tensors(path, tensors, meta)


def load_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    restore_rng: bool = True) -> dict[str, Any]:
    """Restore a checkpoint into ``model`` (and ``optimizer``); returns the metadata, including
    ``step``, ``extra`` and ``extra_tensors``."""
    tensors, meta = _read_tensors(path)
    if meta.get("kind") != "checkpoint":
        raise ModelFileError(f"{path}: is not a training checkpoint")
    target = model.module if hasattr(model, "module") else model
    if meta.get("config") != dict(target.config):
        raise ModelFileError(f"{path}: checkpoint is for a different network ({meta.get('config')})")
    target.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if optimizer is not None and meta.get("optimizer"):
        om = meta["optimizer"]
        state = {}
        for idx, entries in om["state"].items():
            state[int(idx)] = {key: tensors[f"optim.{idx}.{key}"] if value == "tensor" else value
                               for key, value in entries.items()}
        optimizer.load_state_dict({"state": state, "param_groups": om["param_groups"]})
    if restore_rng:
        torch.set_rng_state(tensors["rng.torch"])
        cuda_states = [tensors[k] for k in sorted(t for t in tensors if t.startswith("rng.cuda."))]
        if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
    meta["extra_tensors"] = {k[6:]: v for k, v in tensors.items() if k.startswith("extra.")}
    return meta
