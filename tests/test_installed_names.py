"""The install claims one top-level name, happysad, and no generic ones."""
import subprocess
import sys

import pytest


def _imports(module: str, cwd) -> bool:
    # From outside the repo, so the checkout's own folders are not on sys.path.
    return subprocess.run([sys.executable, "-c", f"import {module}"], cwd=cwd, capture_output=True).returncode == 0


@pytest.mark.parametrize("folder", ["pipeline", "components", "data", "serving"])
def test_each_folder_installs_under_happysad_only(folder, tmp_path):
    assert _imports(f"happysad.{folder}", tmp_path)
    assert not _imports(folder, tmp_path), f"`import {folder}` must not resolve to this project"


def test_the_cli_lives_at_the_top():
    from happysad import cli

    assert cli.build_parser().prog == "happysad"


def test_every_sub_package_is_listed_for_the_install():
    """pyproject.toml names its packages one by one: a sub-package left out imports from
    the checkout (an editable install) but is missing from a built wheel."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    setuptools = (repo / "pyproject.toml").read_text().split("[tool.setuptools]", 1)[1]
    listed = set(re.findall(r'"([\w.]+)"', setuptools.split("packages = [", 1)[1].split("]", 1)[0]))
    folders = dict(re.findall(r'^"(happysad[\w.]*)" = "(\w+)"$', setuptools, re.M))
    found = {f"{package}.{'.'.join(init.parent.relative_to(repo / folder).parts)}".rstrip(".")
             for package, folder in folders.items() for init in (repo / folder).rglob("__init__.py")
             if "__pycache__" not in init.parts}
    assert found and found <= listed, sorted(found - listed)
