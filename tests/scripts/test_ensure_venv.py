"""The environment bootstrap behind `make run` / `make test`."""
import shutil
import subprocess
from pathlib import Path

from helpers import REPO
SCRIPT = REPO / "scripts" / "ensure_venv.sh"


def test_a_current_venv_is_left_alone():
    # make test has just run it; a second call must neither print nor install.
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


def test_no_python_310_fails_naming_what_to_install(tmp_path):
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, project / "scripts")
    for name in ("pyproject.toml", "requirements.lock"):
        shutil.copy(REPO / name, project)
    bare_path = tmp_path / "bin"  # only bash and coreutils: no python3.10, pyenv or uv
    bare_path.mkdir()
    for tool in ("bash", "cat", "sha256sum", "cut", "ls", "sort", "dirname", "rm"):
        (bare_path / tool).symlink_to(shutil.which(tool))
    result = subprocess.run(
        [str(bare_path / "bash"), str(project / "scripts" / "ensure_venv.sh")],
        env={"PATH": str(bare_path), "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "needs Python 3.10" in result.stderr
    for hint in ("pyenv install 3.10", "uv python install 3.10", "PYTHON=/path/to/python3.10"):
        assert hint in result.stderr
    assert not (project / ".venv").exists()


def test_the_venv_holds_compiled_bytecode():
    # Without it each command compiles TFX's imports again where
    # PYTHONDONTWRITEBYTECODE is set: 17 s instead of 7 s to import the orchestrator.
    import importlib.util

    import tfx.orchestration.beam.beam_dag_runner as module

    assert Path(importlib.util.cache_from_source(module.__file__)).is_file()
