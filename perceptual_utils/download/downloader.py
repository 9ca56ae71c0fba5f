"""A resumable, verified, idempotent downloader (standard library only).

An interrupted download continues from its ``.part`` file with an HTTP ``Range`` request; a
file is checksummed where a checksum can be known in advance and only then moved into place; a
file that is already present and valid is not fetched again.
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from tqdm.auto import tqdm

#: Wikimedia asks automated clients to identify themselves (User-Agent policy).
USER_AGENT = "perceptual_utils/0.1 (https://github.com/; workbook data fetcher) python-urllib"
CHUNK = 1 << 20


class FetchError(RuntimeError):
    """A download or a verification failed; the message names the URL or file."""



def sha256_file(path: str | os.PathLike, chunk: int = CHUNK) -> str:
    """Hex sha256 of a file, read in chunks (weights and archives are large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def make_dirs(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns the folders this call created."""
    missing, p = [], Path(folder)
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    Path(folder).mkdir(parents=True, exist_ok=True)
    return missing


def remove_empty_dirs(folders: Iterable[Path]) -> None:
    """Remove those of ``folders`` that are empty, deepest first, so a failed fetch leaves no empty
    folders behind (issue 37: a newcomer took them for a half-finished download). A folder holding
    anything, e.g. a ``.part`` file the next run resumes from, is kept."""
    for folder in sorted(set(map(Path, folders)), key=lambda p: len(p.parts), reverse=True):
        try:
            folder.rmdir()
        except OSError:  # not empty, or already gone
            pass


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
    created = make_dirs(dest.parent)
    try:
        return _fetch(url, dest, sha256, size, progress, timeout)
    except BaseException:
        remove_empty_dirs(created)
        raise


def _fetch(url: str, dest: Path, sha256: str | None, size: int | None, progress: bool, timeout: float) -> Path:
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


