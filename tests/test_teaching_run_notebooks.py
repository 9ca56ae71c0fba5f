"""run_notebooks: the record it writes, the checks the committed-notebook tests rely on, and a real run
of a tiny notebook (JPEG figures, the profile and thread count reach the kernel, atomic on failure)."""
from __future__ import annotations

import copy
import json
import os

import pytest

from perceptual_utils.errors import CLIError
from perceptual_utils.teaching import run_notebooks as rn


def _code(source, count=None, outputs=()):
    return {"cell_type": "code", "execution_count": count, "metadata": {}, "outputs": list(outputs),
            "source": source}


def _notebook(*cells, profile="standard"):
    nb = {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    nb["metadata"][rn.METADATA_KEY] = {"profile": profile, "code_cell_sha256": rn.code_cell_digests(nb)}
    return nb


def _fresh():
    return _notebook({"cell_type": "markdown", "metadata": {}, "source": "# title"},
                     _code("x = 1\n", 1), _code(["print(x)\n", "y = 2"], 2))


def test_digest_is_the_same_for_a_source_stored_as_lines_or_as_one_string():
    assert rn.cell_digest(rn.cell_source({"source": ["a\n", "b"]})) == rn.cell_digest("a\nb")
    assert rn.cell_digest("a\nb") != rn.cell_digest("a\nb ")  # whitespace counts: it is what was run


def test_stale_cells_is_empty_for_a_fresh_record_and_names_an_edited_cell():
    nb = _fresh()
    assert rn.stale_cells(nb) == []
    nb["cells"][2]["source"] = "print(x + 1)\n"
    (problem,) = rn.stale_cells(nb)
    assert "code cell 2" in problem and "print(x + 1)" in problem


def test_stale_cells_when_cells_were_added_or_never_recorded():
    nb = _fresh()
    nb["cells"].append(_code("z = 3"))
    assert "3 code cells now, 2 when" in rn.stale_cells(nb)[0]
    del nb["metadata"][rn.METADATA_KEY]
    assert "never run with run_notebooks" in rn.stale_cells(nb)[0]
    assert "never run with run_notebooks" in rn.profile_problems(nb)[0]


def test_error_outputs_finds_error_outputs_and_printed_tracebacks():
    nb = _fresh()
    assert rn.error_outputs(nb) == []
    nb["cells"][1]["outputs"] = [{"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": []}]
    nb["cells"][2]["outputs"] = [{"output_type": "stream", "name": "stderr",
                                  "text": ["Traceback (most recent call last):\n", "  ...\n"]}]
    problems = rn.error_outputs(nb)
    assert len(problems) == 2 and "ValueError: bad" in problems[0] and "stderr" in problems[1]


def test_a_warning_on_stderr_is_not_an_error():
    nb = _fresh()
    nb["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stderr", "text": "UserWarning: slow\n"}]
    assert rn.error_outputs(nb) == []


def test_execution_counts_must_run_one_to_n_skipping_empty_cells():
    nb = _fresh()
    assert rn.execution_count_problems(nb) == []
    nb["cells"].insert(2, _code("  \n"))  # nbclient does not execute an empty cell
    assert rn.execution_count_problems(nb) == []
    swapped = copy.deepcopy(nb)
    swapped["cells"][1]["execution_count"], swapped["cells"][3]["execution_count"] = 2, 1
    assert "not 1..2 in order" in rn.execution_count_problems(swapped)[0]
    rerun = copy.deepcopy(nb)
    rerun["cells"][3]["outputs"] = [{"output_type": "execute_result", "execution_count": 7, "data": {}, "metadata": {}}]
    assert "a result numbered 7" in rn.execution_count_problems(rerun)[0]


def test_profile_must_be_the_committed_one():
    assert rn.profile_problems(_fresh()) == []
    assert "'quick' profile" in rn.profile_problems(_notebook(_code("x", 1), profile="quick"))[0]


def test_machine_info_and_git_state(tmp_path):
    info = rn.machine_info(threads=1)
    assert info["threads"] == 1 and info["cpu"] and info["torch"]
    assert set(info["cpu_flags"]) <= set(rn.CPU_FLAGS_RECORDED)
    assert rn.git_state(tmp_path) == {"commit": None, "dirty": None}  # not a repository
    state = rn.git_state()
    assert state["commit"] is None or len(state["commit"]) == 40


def test_kernel_environment_overrides_an_inherited_agg_backend(monkeypatch, tmp_path):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    env = rn.kernel_environment("quick", 1, tmp_path)
    assert env["MPLBACKEND"].endswith("backend_inline")
    assert (env["PERCEPTUAL_UTILS_PROFILE"], env["OMP_NUM_THREADS"], env["IPYTHONDIR"]) == ("quick", "1", str(tmp_path))
    config = rn.write_kernel_config(tmp_path, quality=70).read_text()
    assert '"jpeg"' in config and '"quality": 70' in config


def test_resolve_notebooks_by_number_path_or_default(tmp_path):
    assert rn.resolve_notebooks(["05"])[0].name.startswith("05_")
    assert len(rn.resolve_notebooks([])) >= 7
    with pytest.raises(CLIError, match="no such notebook"):
        rn.resolve_notebooks(["99"])
    text = tmp_path / "notes.txt"
    text.write_text("x")
    with pytest.raises(CLIError, match="not a notebook"):
        rn.resolve_notebooks([str(text)])


def _write(path, *sources):
    nb = {"cells": [{**_code(s), "id": f"cell{i}"} for i, s in enumerate(sources)], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                              "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb, indent=1) + "\n")
    return path


@pytest.mark.slow
def test_a_real_run_records_the_run_and_stores_jpeg_figures(tmp_path, capsys):
    path = _write(tmp_path / "00_tiny.ipynb",
                  "import os\nprint(os.environ['PERCEPTUAL_UTILS_PROFILE'], os.environ['OMP_NUM_THREADS'])",
                  "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0]);",
                  "", "1 + 1")
    assert rn.main([str(path), "--profile", "quick", "--timeout", "120"]) == 0
    assert "00_tiny.ipynb:" in capsys.readouterr().out
    nb = json.loads(path.read_text())
    assert "".join(nb["cells"][0]["outputs"][0]["text"]) == "quick 1\n"
    figure = nb["cells"][1]["outputs"][-1]["data"]
    assert "image/jpeg" in figure and "image/png" not in figure
    record = nb["metadata"][rn.METADATA_KEY]
    assert record["profile"] == "quick" and record["machine"]["threads"] == 1
    assert rn.stale_cells(nb) == [] and rn.error_outputs(nb) == [] and rn.execution_count_problems(nb) == []
    assert rn.profile_problems(nb) and not rn.profile_problems(nb, "quick")


@pytest.mark.slow
def test_a_failing_notebook_is_left_unchanged(tmp_path, capsys):
    path = _write(tmp_path / "01_fails.ipynb", "print('before')", "raise ValueError('broken on purpose')")
    before = path.read_bytes()
    assert rn.main([str(path), "--profile", "quick", "--timeout", "120"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: 01_fails.ipynb: failed in cell 1: ValueError: broken on purpose")
    assert "notebook left unchanged" in err
    assert path.read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
