"""The environment bootstrap behind `make run` / `make test`."""
import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

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


def test_every_locked_requirement_carries_its_hashes():
    # make lock writes them (--generate-hashes); the script installs with --require-hashes.
    entries = re.split(r"\n(?=[^\s#])", (REPO / "requirements.lock").read_text())
    pinned = [entry for entry in entries if "==" in entry.split("\n")[0]]
    assert len(pinned) > 250
    assert [e.split()[0] for e in pinned if not re.search(r"--hash=sha256:[0-9a-f]{64}", e)] == []


def _tiny_wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel, built here: no network, no build backend."""
    path = folder / "tinypkg-0.1-py3-none-any.whl"
    files = {"tinypkg/__init__.py": b"VALUE = 1\n",
             "tinypkg-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1\n",
             "tinypkg-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                            b"Tag: py3-none-any\n"}
    record = "".join(f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
                     f"{len(data)}\n" for name, data in files.items()) + "tinypkg-0.1.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
        wheel.writestr("tinypkg-0.1.dist-info/RECORD", record)
    return path


@pytest.mark.parametrize("lock_hash", ["right", "wrong", "none"])
def test_a_locked_file_whose_hash_differs_or_is_missing_is_not_installed(tmp_path, lock_hash):
    """The script on a project whose lock holds one local wheel: installed with its own SHA-256,
    refused with another one or with none (--require-hashes), and then the venv's stamp is not
    written. Offline, a few seconds."""
    wheel = _tiny_wheel(tmp_path)
    digest = {"right": hashlib.sha256(wheel.read_bytes()).hexdigest(), "wrong": "0" * 64, "none": None}[lock_hash]
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, project / "scripts")
    (project / "requirements.lock").write_text(f"tinypkg @ {wheel.as_uri()}"
                                               + (f" \\\n    --hash=sha256:{digest}\n" if digest else "\n"))
    (project / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\nbuild-backend = '
                                            '"setuptools.build_meta"\n[project]\nname = "tinyproject"\n'
                                            'version = "0"\n[tool.setuptools]\npy-modules = []\n')
    # A bare 3.10 venv that finds uv and setuptools in the project's venv (a .pth), so nothing downloads.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(project / ".venv")], check=True, timeout=60)
    site = Path(subprocess.run([str(project / ".venv" / "bin" / "python"), "-c", "import site; "
                                "print(site.getsitepackages()[0])"], capture_output=True, text=True,
                               check=True).stdout.strip())
    (site / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    result = subprocess.run(["bash", str(project / "scripts" / "ensure_venv.sh")], capture_output=True, text=True,
                            timeout=120, env=dict(os.environ, UV_OFFLINE="1", UV_CACHE_DIR=str(tmp_path / "cache")))
    installed = (site / "tinypkg" / "__init__.py").exists()
    stamped = (project / ".venv" / ".happysad-lock-stamp").exists()
    if lock_hash == "right":
        assert result.returncode == 0, result.stderr
        assert installed and stamped
    else:
        assert result.returncode != 0
        assert "hash" in result.stderr.lower() and (digest or "none were provided") in result.stderr, result.stderr
        assert not installed and not stamped
