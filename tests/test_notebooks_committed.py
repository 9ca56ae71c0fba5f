"""The committed notebooks' outputs are what their cells, as they now read, produce in `standard`.

Instructors show the committed outputs in class and CI vouches for them, so each notebook must have
been executed top to bottom by ``python -m perceptual_utils.teaching.run_notebooks`` in the `standard`
profile (README: "The committed notebooks hold outputs of a `standard` run"), with no cell edited
since (the run records a sha256 of every code cell), no error in its outputs, and the whole set light
enough that a re-run does not bloat every clone. A failure names the fix: re-run that notebook.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from perceptual_utils.teaching.run_notebooks import (COMMIT_PROFILE, NOTEBOOKS_DIR, error_outputs,
                                                     execution_count_problems, profile_problems, stale_cells)

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
#: All committed notebooks together (issue 37: they weighed 28 MB with PNG figures; each re-run added
#: that much to the history).
TOTAL_BUDGET_BYTES = 10_000_000
#: One notebook's share: a fifth of the total, so no single notebook can take the whole budget
#: (the heaviest, 04 with its 512 px gallery and a 1024 px photo, weighs about 1.2 MB in JPEG).
NOTEBOOK_BUDGET_BYTES = TOTAL_BUDGET_BYTES // 5


def _fix(path: Path) -> str:
    return f"re-run it: python -m perceptual_utils.teaching.run_notebooks notebooks/{path.name} --profile {COMMIT_PROFILE}"


@pytest.fixture(params=NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def notebook(request) -> tuple[Path, dict]:
    return request.param, json.loads(request.param.read_text(encoding="utf-8"))


def test_notebooks_exist():
    assert len(NOTEBOOKS) >= 7, f"expected the workbook's notebooks in {NOTEBOOKS_DIR}"


def _assert_none(path: Path, problems: list[str], fix: str, what: str = "") -> None:
    """One failure line: the notebook, its problems and the fix (``what`` names the kind of problem)."""
    assert not problems, f"{path.name}: {what}" + "; ".join(problems) + f". {fix}"


def test_outputs_come_from_the_cells_as_they_read(notebook):
    path, nb = notebook
    _assert_none(path, stale_cells(nb), _fix(path), what="stale outputs: ")


def test_outputs_hold_no_error(notebook):
    path, nb = notebook
    _assert_none(path, error_outputs(nb), f"Fix the cell, then {_fix(path)}")


def test_executed_once_top_to_bottom(notebook):
    path, nb = notebook
    _assert_none(path, execution_count_problems(nb), _fix(path))


def test_outputs_are_from_the_committed_profile(notebook):
    path, nb = notebook
    _assert_none(path, profile_problems(nb, COMMIT_PROFILE), _fix(path))


def test_each_notebook_within_its_share_of_the_size_budget(notebook):
    path, _ = notebook
    size = path.stat().st_size
    assert size <= NOTEBOOK_BUDGET_BYTES, (
        f"{path.name}: {size / 1e6:.2f} MB, over its {NOTEBOOK_BUDGET_BYTES / 1e6:.1f} MB share; store figures as JPEG "
        "(run_notebooks does) or show fewer or smaller pictures")


def test_notebooks_together_within_the_size_budget():
    sizes = {p.name: p.stat().st_size for p in NOTEBOOKS}
    total = sum(sizes.values())
    heaviest = ", ".join(f"{n} {s / 1e6:.2f} MB" for n, s in sorted(sizes.items(), key=lambda kv: -kv[1])[:3])
    assert total <= TOTAL_BUDGET_BYTES, (
        f"committed notebooks weigh {total / 1e6:.2f} MB together, over {TOTAL_BUDGET_BYTES / 1e6:.0f} MB "
        f"(heaviest: {heaviest})")


def _code_sources(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def test_every_notebook_has_checked_cells():
    """nbval compares only cells marked ``# NBVAL_CHECK_OUTPUT``: each notebook needs some, printing something."""
    for path in NOTEBOOKS:
        checked = [s for s in _code_sources(path) if s.startswith("# NBVAL_CHECK_OUTPUT")]
        assert checked, f"{path.name}: no cell marked # NBVAL_CHECK_OUTPUT"
        assert all("print(" in s or "exercises.check_" in s for s in checked), (
            f"{path.name}: a checked cell that prints nothing compares nothing")


def test_exercises_are_numbered_in_reading_order_and_match_the_checkers():
    """The notebooks' "# Exercise N:" cells run 1, 2, 3, ... across the workbook, and the N-th one calls the
    checker of the N-th exercise in ``exercises.EXERCISES`` (the registry's numbers)."""
    import re

    from perceptual_utils.teaching import exercises

    found = []  # (number, checker called on the student's function, notebook)
    for path in NOTEBOOKS:
        for source in _code_sources(path):
            number = re.search(r"^# Exercise (\d+):", source, flags=re.M)
            if number:
                found.append([int(number.group(1)), None, path.name])
            check = re.search(r"exercises\.check_(\w+)\(my_", source)  # in the exercise's cell or a later one
            if check and found and found[-1][1] is None:
                found[-1][1] = check.group(1)
    assert [n for n, _, _ in found] == list(range(1, len(found) + 1)), f"exercise numbers in reading order: {found}"
    checkers = [fn.__name__.removeprefix("check_") for fn in exercises.EXERCISES.values()]
    assert [c for _, c, _ in found] == checkers, f"notebooks call {found}; the registry's order is {checkers}"
