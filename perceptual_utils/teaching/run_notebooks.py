"""Execute the workbook's notebooks for committing, and record where their outputs came from.

    python -m perceptual_utils.teaching.run_notebooks [NOTEBOOK ...] [--profile standard]
                                                     [--timeout S] [--threads 1]

Each notebook runs top to bottom in a fresh kernel (nbclient, as ``jupyter nbconvert --execute``
does) and is replaced atomically only when every cell succeeded, so a failed run never leaves a
half-executed notebook behind. Its metadata then holds, under ``metadata["perceptual_utils"]``,
the profile, the package version, the git commit (and whether the tree was dirty), the machine, the
torch version, the date and a sha256 of every code cell's source at execution time:
``tests/test_notebooks_committed.py`` compares those digests with the cells as they now read, so
a cell edited after its outputs were made (stale outputs) fails the test suite.

The kernel runs with ``OMP_NUM_THREADS`` threads (1 by default: the committed outputs were made
with one thread per notebook, so timings in them are comparable between notebooks), and draws
matplotlib figures as JPEG (:data:`JPEG_QUALITY`): a PNG of a photo grid weighs 1-2 MB, a JPEG a
tenth of that, and every re-run of the workbook adds its figures to every clone's history.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.metadata
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from .. import __version__
from ..config import ENV_PROFILE, PROFILES, PROJECT_ROOT
from ..errors import CLIError
from ..model_io import atomic_write

#: Where the run's record lives in a notebook's metadata.
METADATA_KEY = "perceptual_utils"
#: The profile the committed notebooks must be run in (README: "The committed notebooks hold
#: outputs of a `standard` run").
COMMIT_PROFILE = "standard"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
#: JPEG quality of the figures. At 85 (PIL's default 4:2:0 chroma) the titles, axis labels and
#: equations of the notebooks' figures stay readable and photos show no blocking. Measured on the
#: 38 PNG figures committed before this runner (re-encoded): 23.6 MB of PNG became 5.6 MB at 85;
#: 85 with full chroma (4:4:4) would be 7.5 MB, too close to the 10 MB budget with notebook 07 to come.
JPEG_QUALITY = 85
#: CPU flags that decide what a run computes (bf16 autocast needs avx512_bf16 or amx_bf16; see
#: ``config.cpu_has_native_bf16``) and how fast.
CPU_FLAGS_RECORDED = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")

# The kernel's IPython configuration. bbox_inches="tight" is matplotlib_inline's own default, kept
# because setting print_figure_kwargs replaces it.
_KERNEL_CONFIG = """\
c.InlineBackend.figure_formats = {{"jpeg"}}
c.InlineBackend.print_figure_kwargs = {{"bbox_inches": "tight", "pil_kwargs": {{"quality": {quality}}}}}
"""


def cell_source(cell: Mapping) -> str:
    """A cell's source as one string (nbformat stores it as a string or as a list of lines)."""
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def cell_digest(source: str) -> str:
    """sha256 (hex) of a code cell's source, exactly as written (whitespace included)."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def code_cell_digests(notebook: Mapping) -> list[str]:
    """The digest of every code cell's source, in cell order."""
    return [cell_digest(cell_source(c)) for c in notebook["cells"] if c["cell_type"] == "code"]


def _cpuinfo() -> tuple[str, set[str]]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: the platform module's (vaguer) name, flags unknown
        return platform.processor() or platform.machine(), set()
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return model or platform.machine(), flags


def machine_info(threads: int) -> dict:
    """The machine the outputs come from: CPU model, the flags that matter, cores, threads, torch."""
    model, flags = _cpuinfo()
    return {
        "cpu": model,
        "architecture": platform.machine(),
        "cpu_flags": [f for f in CPU_FLAGS_RECORDED if f in flags],
        "native_bf16": bool({"avx512_bf16", "amx_bf16"} & flags),
        "cores": os.cpu_count(),
        "threads": threads,
        "system": platform.system(),
        "python": platform.python_version(),
        "torch": _version("torch"),
    }


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_state(root: Path = PROJECT_ROOT) -> dict:
    """``{"commit": sha or None, "dirty": bool or None}`` of the repository holding ``root``."""
    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def run_record(notebook: Mapping, profile: str, threads: int, wall_seconds: float) -> dict:
    """What :func:`execute_notebook` stores under ``metadata[METADATA_KEY]``."""
    return {
        "profile": profile,
        "package_version": __version__,
        "git": git_state(),
        "machine": machine_info(threads),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(wall_seconds, 1),
        "code_cell_sha256": code_cell_digests(notebook),
    }


def kernel_environment(profile: str, threads: int, ipython_dir: Path) -> dict[str, str]:
    """The kernel's environment: this process's, with the profile, the thread count and the
    JPEG-figure IPython configuration set, and the inline matplotlib backend (an inherited
    ``MPLBACKEND=Agg``, as in CI's shell, would make every figure vanish from the outputs)."""
    env = dict(os.environ)
    env.update({
        ENV_PROFILE: profile,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "IPYTHONDIR": str(ipython_dir),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    })
    return env


def write_kernel_config(ipython_dir: Path, quality: int = JPEG_QUALITY) -> Path:
    """Write the IPython profile that makes the kernel's inline figures JPEG; returns its file."""
    config = ipython_dir / "profile_default" / "ipython_kernel_config.py"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(_KERNEL_CONFIG.format(quality=quality))
    return config


def _first_error(notebook) -> str:
    for index, cell in enumerate(notebook.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                evalue = (str(out.get("evalue", "")).splitlines() or [""])[0]
                return f"cell {index}: {out.get('ename')}: {evalue}"
    return "no error output recorded"


def execute_notebook(path: Path, profile: str, timeout: int | None, threads: int) -> float:
    """Execute ``path`` top to bottom and replace it atomically with the result; returns seconds.

    Raises :class:`CLIError` (the notebook left unchanged) when a cell fails or times out.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="run-notebooks-ipython-") as ipython_dir:
        write_kernel_config(Path(ipython_dir))
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": str(path.parent)}})
        start = time.perf_counter()
        try:
            client.execute(env=kernel_environment(profile, threads, Path(ipython_dir)))
        except CellTimeoutError:
            raise CLIError(f"{path.name}: a cell ran longer than {timeout} s; notebook left unchanged") from None
        except CellExecutionError:
            raise CLIError(f"{path.name}: failed in {_first_error(notebook)}; notebook left unchanged") from None
        wall = time.perf_counter() - start
    notebook.metadata[METADATA_KEY] = run_record(notebook, profile, threads, wall)
    atomic_write(path, lambda tmp: nbformat.write(notebook, tmp))
    return wall


def stale_cells(notebook: Mapping) -> list[str]:
    """Code cells whose source differs from the one their outputs were produced from.

    Compares :func:`code_cell_digests` with the digests :func:`execute_notebook` recorded; a
    notebook without a record, or with cells added or removed since, is stale as a whole.
    """
    recorded = notebook.get("metadata", {}).get(METADATA_KEY, {}).get("code_cell_sha256")
    if recorded is None:
        return ["no record of how its outputs were made (never run with run_notebooks)"]
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    if len(recorded) != len(cells):
        return [f"{len(cells)} code cells now, {len(recorded)} when its outputs were made"]
    return [f"code cell {i + 1} ({_first_line(c)!r}) changed since its outputs were made"
            for i, (c, digest) in enumerate(zip(cells, recorded)) if cell_digest(cell_source(c)) != digest]


def _first_line(cell: Mapping) -> str:
    return (cell_source(cell).strip().splitlines() or [""])[0][:60]


def error_outputs(notebook: Mapping) -> list[str]:
    """Outputs that hold an error: ``error`` outputs and tracebacks printed to a stream."""
    problems = []
    for i, cell in enumerate(c for c in notebook["cells"] if c["cell_type"] == "code"):
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            text = text if isinstance(text, str) else "".join(text)
            if out.get("output_type") == "error":
                problems.append(f"code cell {i + 1} ({_first_line(cell)!r}): {out.get('ename')}: {out.get('evalue')}")
            elif "Traceback (most recent call last)" in text:
                problems.append(f"code cell {i + 1} ({_first_line(cell)!r}): a traceback in its {out.get('name')} output")
    return problems


def execution_count_problems(notebook: Mapping) -> list[str]:
    """Empty unless the non-empty code cells were executed once each, in order: counts 1..n
    (an empty cell is not executed, so it has none), each result numbered like its cell."""
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code" and cell_source(c).strip()]
    counts = [c.get("execution_count") for c in cells]
    problems = [] if counts == list(range(1, len(cells) + 1)) else [
        f"execution counts {counts} are not 1..{len(cells)} in order (run top to bottom in a fresh kernel)"]
    for cell in cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "execute_result" and out.get("execution_count") != cell.get("execution_count"):
                problems.append(f"cell {cell.get('execution_count')}: a result numbered {out.get('execution_count')}")
    return problems


def profile_problems(notebook: Mapping, profile: str = COMMIT_PROFILE) -> list[str]:
    """Empty when the notebook's outputs come from a run in ``profile``."""
    record = notebook.get("metadata", {}).get(METADATA_KEY)
    if record is None:
        return ["no record of how its outputs were made (never run with run_notebooks)"]
    if record.get("profile") != profile:
        return [f"outputs from the {record.get('profile')!r} profile, not {profile!r}"]
    return []


def resolve_notebooks(names: Sequence[str]) -> list[Path]:
    """The notebooks to run: the given files (or ``NN`` prefixes such as ``05``), else all of them."""
    if not names:
        return sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    paths = []
    for name in names:
        path = Path(name)
        if not path.is_file():
            matches = sorted(NOTEBOOKS_DIR.glob(f"{name}_*.ipynb")) if name.isdigit() else []
            if len(matches) != 1:
                raise CLIError(f"{name}: no such notebook (give a path or a number such as 05)")
            path = matches[0]
        if path.suffix != ".ipynb":
            raise CLIError(f"{name}: not a notebook (.ipynb)")
        paths.append(path.resolve())
    return paths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m perceptual_utils.teaching.run_notebooks",
        description="Execute notebooks top to bottom in place (atomically) and record the run in their metadata.")
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                        help="notebook files or numbers (e.g. 05); default: every notebook in notebooks/")
    parser.add_argument("--profile", choices=PROFILES, default=COMMIT_PROFILE,
                        help=f"PERCEPTUAL_UTILS_PROFILE for the kernel (default {COMMIT_PROFILE}, what is committed)")
    parser.add_argument("--timeout", type=int, default=3600, metavar="S",
                        help="seconds one cell may run before the notebook counts as failed (default 3600)")
    parser.add_argument("--threads", type=int, default=1,
                        help="OMP_NUM_THREADS of the kernel (default 1: one thread per notebook)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.threads < 1 or args.timeout < 1:
            raise CLIError("--threads and --timeout must be at least 1")
        paths = resolve_notebooks(args.notebooks)
        failed = 0
        for path in paths:
            print(f"{path.name}: running ({args.profile}, {args.threads} thread(s))", flush=True)
            try:
                wall = execute_notebook(path, args.profile, args.timeout, args.threads)
            except CLIError as exc:
                print(f"error: {exc}", file=sys.stderr, flush=True)
                failed += 1
                continue
            print(f"{path.name}: {wall:.1f} s", flush=True)
    except CLIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
