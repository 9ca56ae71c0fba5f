"""Run-folder safety: one run per folder (stale locks taken over), SIGTERM like Ctrl-C, leftover
temporaries cleaned, settings compared by the files they name."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from perceptual_utils.run_folder import (LOCK_NAME, RunFolderLockedError, acquire_run_lock, changed_settings,
                                         clean_stale_temporaries, read_lock, sigterm_as_keyboard_interrupt)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_is_exclusive_and_released(tmp_path):
    out = tmp_path / "run"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        out.mkdir()
        (out / LOCK_NAME).write_text(json.dumps({"pid": sleeper.pid, "host": os.uname().nodename}))
        with pytest.raises(RunFolderLockedError, match=f"{out}.*in use.*pid {sleeper.pid}") as info:
            with acquire_run_lock(out):
                pass
        assert "\n" not in str(info.value)
        assert read_lock(out)["pid"] == sleeper.pid  # the live owner's lock is untouched
    finally:
        sleeper.kill()
        sleeper.wait()
    with acquire_run_lock(out) as lock:  # the owner is gone now: stale lock taken over
        assert read_lock(out)["pid"] == os.getpid() and lock.exists()
    assert not (out / LOCK_NAME).exists()


def test_stale_or_garbage_lock_is_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": _dead_pid(), "host": os.uname().nodename}))
    with acquire_run_lock(tmp_path):
        assert read_lock(tmp_path)["pid"] == os.getpid()
    (tmp_path / LOCK_NAME).write_text("")  # killed between creating and writing it
    with acquire_run_lock(tmp_path):
        assert read_lock(tmp_path)["pid"] == os.getpid()


def test_second_process_on_the_same_folder_gets_one_line(tmp_path):
    code = ("import sys, time\nfrom perceptual_utils.run_folder import acquire_run_lock\n"
            "with acquire_run_lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(30)\n")
    first = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderLockedError, match="in use by another training run"):
            with acquire_run_lock(tmp_path):
                pass
    finally:
        first.kill()
        first.wait()


def test_clean_stale_temporaries_removes_only_atomic_write_leftovers(tmp_path):
    from perceptual_utils.model_io import atomic_write

    # The user's own files, a temporary of a live run in a nested folder: all kept.
    keep = [tmp_path / "checkpoint.safetensors", tmp_path / "notes.tmp", tmp_path / ".hidden",
            tmp_path / "notes" / ".thesis.chapter3.tmp", tmp_path / ".thesis.chapter3.tmp",
            tmp_path / "other_run" / ".model.safetensors.perceptual-utils-k9j8h7g6.tmp"]
    leftovers = [tmp_path / ".checkpoint.safetensors.perceptual-utils-abc123xy.tmp",
                 tmp_path / "previews" / ".step_1.jpg.perceptual-utils-q1w2e3r4.tmp"]
    for p in keep + leftovers:
        p.parent.mkdir(exist_ok=True)
        p.write_text("x")
    names = []

    def killed(tmp):  # a write interrupted by kill -9 leaves its temporary file behind
        names.append(Path(tmp).name)
        raise SystemExit

    removed = clean_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted(leftovers) and all(p.exists() for p in keep)
    with pytest.raises(SystemExit):
        atomic_write(tmp_path / "model.safetensors", killed)
    assert clean_stale_temporaries(tmp_path) == []  # atomic_write itself cleans up on exceptions
    (tmp_path / names[0]).write_text("half")  # the name the writer really uses is the one cleaned
    assert clean_stale_temporaries(tmp_path) == [tmp_path / names[0]]


def test_sigterm_raises_keyboard_interrupt_inside_and_restores():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with sigterm_as_keyboard_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
    assert signal.getsignal(signal.SIGTERM) is before


def test_changed_settings_treats_paths_to_the_same_file_as_equal(tmp_path, monkeypatch):
    style = tmp_path / "styles" / "wave.jpg"
    style.parent.mkdir()
    style.write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    saved = {"style": "styles/wave.jpg", "lr": 0.001, "steps": 10}
    assert changed_settings(saved, {"style": str(style), "lr": 0.001, "steps": 20}, ignore={"steps"}) == []
    assert changed_settings(saved, {"style": str(style), "lr": 0.002, "steps": 10}) == ["lr"]
    other = tmp_path / "styles" / "other.jpg"
    other.write_bytes(b"x")
    assert changed_settings(saved, {"style": str(other), "lr": 0.001, "steps": 10}) == ["style"]


def test_guard_run_folder_decorator_locks_cleans_and_releases(tmp_path):
    from perceptual_utils.run_folder import guard_run_folder

    (tmp_path / ".checkpoint.safetensors.perceptual-utils-abcd1234.tmp").write_text("half")
    seen = {}

    @guard_run_folder()
    def train(model, out_dir, steps=1):
        seen["lock"] = read_lock(out_dir)
        seen["tmp"] = sorted(p.name for p in tmp_path.iterdir())
        seen["sigterm"] = signal.getsignal(signal.SIGTERM)
        return steps

    assert train(None, tmp_path, steps=3) == 3
    assert seen["lock"]["pid"] == os.getpid() and seen["tmp"] == [LOCK_NAME]
    assert seen["sigterm"] is not signal.getsignal(signal.SIGTERM)  # installed inside, restored after
    assert not (tmp_path / LOCK_NAME).exists()
