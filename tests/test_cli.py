"""The command line as a whole: thin cli.py, errors from errors.py, one progress switch, one device option."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from perceptual_utils import errors
from perceptual_utils.cli import COMMAND_MODULES, build_parser, main

PACKAGE = Path(__file__).resolve().parent.parent / "perceptual_utils"


def _commands():
    return build_parser()._subparsers._group_actions[0].choices


def _imported_modules(path: Path) -> set[str]:
    """The absolute module names a package file imports from (relative imports resolved)."""
    package = ["perceptual_utils", *path.relative_to(PACKAGE).parts[:-1]]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            found.add(".".join(base + ([node.module] if node.module else [])))
    return found


def test_no_module_imports_back_from_cli():
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if p.relative_to(PACKAGE).parts != ("__main__.py",) and "perceptual_utils.cli" in _imported_modules(p)]
    assert not offenders, f"import CLIError from perceptual_utils.errors instead: {offenders}"


def test_cli_error_is_the_errors_module_one():
    from perceptual_utils import cli

    assert cli.CLIError is errors.CLIError and errors.CLIError in errors.USER_ERRORS


def test_every_command_module_registers():
    assert len(COMMAND_MODULES) == 10 and len(_commands()) == 12


@pytest.mark.parametrize("command", ["fetch-weights", "fetch-data", "gatys", "invert", "train-style", "train-sr",
                                     "stylize", "upscale", "evaluate-sr", "bench"])
def test_one_progress_switch_everywhere(command, capsys):
    parser = _commands()[command]
    assert "--no-progress" in parser.format_help() and "--quiet" not in parser.format_help()
    dests = {a.dest for a in parser._actions if "--no-progress" in a.option_strings or "--quiet" in a.option_strings}
    assert dests == {"progress"}  # --quiet is kept as a hidden alias of --no-progress


@pytest.mark.parametrize("command", ["train-style", "train-sr", "stylize", "upscale", "bench"])
def test_one_device_option(command):
    help_text = _commands()[command].format_help()
    assert "--device" in help_text and "cpu, cuda, cuda:1" in help_text


def test_train_style_has_the_network_options_of_train_sr():
    style = {o for a in _commands()["train-style"]._actions for o in a.option_strings}
    sr = {o for a in _commands()["train-sr"]._actions for o in a.option_strings}
    assert {"--variant", "--channels", "--num-residual", "--upsample"} <= style & sr


def test_every_command_help_runs(capsys):
    for name in _commands():
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0, name
    assert "usage" in capsys.readouterr().out
