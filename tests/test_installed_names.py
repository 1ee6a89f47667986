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
