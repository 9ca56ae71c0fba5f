"""The Table 1 runner (perceptual_utils.style.timing, the ``bench`` command) on tiny sizes."""
from __future__ import annotations

import json

import torch

from perceptual_utils.cli import main as cli_main
from perceptual_utils.style.timing import PAPER_TABLE1, format_table, run_benchmark, time_gatys, timed


def test_timed_runs_warmup_then_repeats():
    calls = []
    times = timed(lambda: calls.append(1), torch.device("cpu"), repeats=3, warmup=2)
    assert len(calls) == 5 and len(times) == 3 and all(t >= 0 for t in times)


def test_time_gatys_measured_and_extrapolated_agree_in_shape():
    content, style = torch.rand(3, 16, 16), torch.rand(3, 16, 16)
    measured = time_gatys(content, style, [1, 2], torch.device("cpu"))
    assert set(measured) == {1, 2} and not measured[1]["extrapolated"]
    assert 0 < measured[1]["seconds"] <= measured[2]["seconds"]
    extrapolated = time_gatys(content, style, [1, 4], torch.device("cpu"), measure_iterations=1)
    assert extrapolated[4]["extrapolated"] and extrapolated[4]["measured_iterations"] == 1
    per = extrapolated[4]["seconds_per_iteration"]
    assert abs(extrapolated[4]["seconds"] - extrapolated[1]["seconds"] - 3 * per) < 1e-9


def test_run_benchmark_and_table_on_tiny_sizes():
    result = run_benchmark(sizes=[16, 24], iterations=[1, 2], device="cpu", repeats=1, train_size=16,
                           train_batch=1, train_steps=1, progress=False)
    assert [row["size"] for row in result["rows"]] == [16, 24] and result["device_type"] == "cpu"
    for row in result["rows"]:
        assert set(row["gatys"]) == {"1", "2"} and row["speedup_vs"] == 2
        assert row["speedup"] == row["gatys"]["2"]["seconds"] / row["feedforward"]["seconds"]
    assert result["training"]["images_per_second"] > 0
    json.dumps(result)  # what --json writes
    table = format_table(result)
    assert "Gatys 1 it | Gatys 2 it" in table and "16 px" in table and "training throughput" in table
    assert "paper" not in table.split("device:")[0]  # no paper row for sizes the paper did not measure
    assert 256 in PAPER_TABLE1


def test_bench_command_writes_json(tmp_path, capsys):
    out = tmp_path / "t1.json"
    assert cli_main(["bench", "--sizes", "16", "--iterations", "1", "--repeats", "1", "--no-train",
                     "--device", "cpu", "--json", str(out), "--no-progress"]) == 0
    assert json.loads(out.read_text())["rows"][0]["size"] == 16
    assert "extrapolated" in capsys.readouterr().out  # CPU: Gatys is extrapolated from 3 iterations
