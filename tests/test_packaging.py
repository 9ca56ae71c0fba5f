"""Packaging: pip and conda users get the same requirements; the public names import; the CLI runs."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRED_PUBLIC = ("gram_matrix", "feature_reconstruction_loss", "style_reconstruction_loss",
                   "total_variation_loss", "pixel_loss", "PerceptualLoss", "LossNetwork")


def _requirement(line: str) -> tuple[str, str]:
    """'Torch >= 2.3' -> ('torch', '>=2.3'): normalised name and specifier."""
    m = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*?)\s*", line)
    assert m, f"cannot parse requirement {line!r}"
    name = re.sub(r"[-_.]+", "-", m.group(1)).lower()
    return name, m.group(2).replace(" ", "")


def pip_requirements() -> dict[str, str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    reqs = [_requirement(l.split("#")[0]) for l in lines if l.split("#")[0].strip()]
    return dict(reqs)


def conda_pip_requirements() -> dict[str, str]:
    yaml = pytest.importorskip("yaml")
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert pip_sections, "environment.yml has no pip: section"
    entries = [e for e in pip_sections[0] if not e.startswith("-e")]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    entries += [c for c in conda if _requirement(c)[0] not in ("python", "pip")]
    return dict(_requirement(e) for e in entries)


def test_requirements_and_environment_agree():
    pip, conda = pip_requirements(), conda_pip_requirements()
    assert pip == conda, f"only in requirements.txt: {pip.items() - conda.items()}; " \
                         f"only in environment.yml: {conda.items() - pip.items()}"


def test_requirements_are_lower_bounds_only():
    # The machine's pip serves torch 2.14.1 / torchvision 0.29.1; never pin or cap above what exists.
    for name, spec in pip_requirements().items():
        assert spec.startswith(">="), f"{name}{spec}: use a lower-bound range"
        assert "," not in spec and "<" not in spec, f"{name}{spec}: no upper caps"


def test_pyproject_dependencies_are_in_requirements():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = dict(_requirement(d) for d in project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        deps.update(_requirement(d) for d in extra)
    pip = pip_requirements()
    assert {k: pip.get(k) for k in deps} == deps


def test_public_names_import_from_the_top_level():
    import perceptual_utils

    for name in REQUIRED_PUBLIC:
        assert name in perceptual_utils.__all__
        assert callable(getattr(perceptual_utils, name))
    broken = []
    for name in perceptual_utils.__all__:
        try:
            getattr(perceptual_utils, name)
        except Exception as exc:  # report every broken export at once
            broken.append(f"{name}: {type(exc).__name__}: {exc}")
    assert not broken, "; ".join(broken)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        perceptual_utils.nope  # noqa: B018


def test_cli_help_runs():
    out = subprocess.run([sys.executable, "-m", "perceptual_utils", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "fetch-weights" in out.stdout and "fetch-data" in out.stdout


def test_fetch_data_help(capsys):
    from perceptual_utils.cli import main

    with pytest.raises(SystemExit) as info:
        main(["fetch-data", "--help"])
    assert info.value.code == 0
    assert "{styles,sr,coco-mini,coco,all}" in capsys.readouterr().out


def _readme_commands() -> list[str]:
    """The shell lines in README.md's fenced ``bash`` blocks."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_ci_script_points_at_shared_and_runs_the_readme_command():
    script = (ROOT / ".ci" / "run").read_text()
    assert script.startswith("#!") and "set -euo pipefail" in script
    assert "PERCEPTUAL_UTILS_PROFILE=quick" in script and "shared/data" in script
    commands = _readme_commands()
    # README's set-up-and-test command is this script, and the script runs README's install and test lines
    assert "bash .ci/run" in commands
    assert "python -m pip install -r requirements.txt -e ." in script
    assert "python -m pytest" in script and any(c.endswith("python -m pytest") for c in commands)


def test_readme_commands_use_real_cli_commands():
    from perceptual_utils.cli import build_parser

    known = set(build_parser()._subparsers._group_actions[0].choices)
    used = {m.group(1) for c in _readme_commands() for m in re.finditer(r"-m perceptual_utils ([a-z-]+)", c)}
    assert used and used <= known, f"README names unknown commands: {used - known}"
