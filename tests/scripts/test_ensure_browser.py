"""The browser bootstrap behind `make test`: scripts/ensure_browser.sh.

The real script runs on a PATH of stubs: `id` says root or not, `apt-get` and `sudo`
log their calls, and apt-get "installs" by writing the files CHROMIUM and CHROMEDRIVER
name. Nothing is installed, nothing downloads: a few seconds.
"""
import shutil
import subprocess

import pytest

from helpers import REPO
SCRIPT = REPO / "scripts" / "ensure_browser.sh"
APT_GET_INSTALL = "apt-get DEBIAN_FRONTEND=noninteractive install -y -qq chromium chromium-driver"


def _stub(folder, name, body):
    (folder / name).write_text(f"#!{shutil.which('bash')}\n{body}\n")
    (folder / name).chmod(0o755)


def _run(tmp_path, uid=0, apt_get=True, apt_get_installs=True, sudo=False, on_path=(),
         chromium=None, chromedriver=None):
    """The script with PATH = bash, env, true and the stubs (`on_path` names stub browsers there too),
    CHROMIUM and CHROMEDRIVER = tmp_path/usr/... unless given. Returns (result, logged calls)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for tool in ("bash", "env", "true"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    _stub(bin_dir, "id", f'[ "$1" = -u ] && echo {uid}')
    for name in on_path:
        _stub(bin_dir, name, "exit 0")
    if apt_get:  # logs its arguments and DEBIAN_FRONTEND; `install` writes the two binaries
        install = ('PATH=/usr/bin:/bin; mkdir -p "$(dirname "$CHROMIUM")"; for f in "$CHROMIUM" "$CHROMEDRIVER"; '
                   'do echo "#!/bin/sh" > "$f"; chmod +x "$f"; done') if apt_get_installs else ":"
        _stub(bin_dir, "apt-get", f'echo "apt-get DEBIAN_FRONTEND=${{DEBIAN_FRONTEND:-}} $*" >> {log}\n'
                                  f'if [ "$1" = install ]; then {install}; fi')
    if sudo:  # passwordless: runs what it is given
        _stub(bin_dir, "sudo", f'echo "sudo $*" >> {log}\n[ "$1" = -n ] && shift\nexec "$@"')
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path),
           "CHROMIUM": chromium or str(tmp_path / "usr" / "chromium"),
           "CHROMEDRIVER": chromedriver or str(tmp_path / "usr" / "chromedriver")}
    # In tmp_path: a stub apt-get "installing" a bare CHROMIUM=chromium writes ./chromium.
    result = subprocess.run([str(bin_dir / "bash"), str(SCRIPT)], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=30)
    return result, (log.read_text().splitlines() if log.exists() else [])


@pytest.mark.parametrize("named", ["by path", "by name on PATH"])
def test_present_browsers_are_left_alone(tmp_path, named):
    # As conftest.py's shutil.which: CHROMIUM=/some/chromium, or a bare name looked up on PATH.
    if named == "by path":
        (tmp_path / "usr").mkdir()
        for name in ("chromium", "chromedriver"):
            _stub(tmp_path / "usr", name, "exit 0")
        result, calls = _run(tmp_path)
    else:
        result, calls = _run(tmp_path, on_path=("chromium", "chromedriver"),
                             chromium="chromium", chromedriver="chromedriver")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert calls == []


@pytest.mark.parametrize("missing", ["both", "chromedriver only"])
def test_missing_browsers_are_installed_as_root(tmp_path, missing):
    if missing == "chromedriver only":
        (tmp_path / "usr").mkdir()
        _stub(tmp_path / "usr", "chromium", "exit 0")
    result, calls = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "installing chromium chromium-driver (the browser tests drive them)\n"
    # Both packages even when one is there: a chromedriver drives only its own chromium version.
    assert calls == ["apt-get DEBIAN_FRONTEND= update -qq", APT_GET_INSTALL]


def test_passwordless_sudo_installs_them_when_not_root(tmp_path):
    result, calls = _run(tmp_path, uid=1000, sudo=True)
    assert result.returncode == 0, result.stderr
    assert calls == ["sudo -n true",
                     "sudo -n apt-get update -qq", "apt-get DEBIAN_FRONTEND= update -qq",
                     "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver",
                     APT_GET_INSTALL]


@pytest.mark.parametrize("why", ["not root", "no apt-get"])
def test_what_cannot_install_fails_at_once_in_one_line(tmp_path, why):
    # Not root and no sudo on PATH; or root without apt-get.
    result, calls = _run(tmp_path, **({"uid": 1000} if why == "not root" else {"apt_get": False}))
    assert result.returncode == 1
    assert result.stdout == "" and calls == []
    assert result.stderr.count("\n") == 1, result.stderr
    for hint in (str(tmp_path / "usr" / "chromium"), str(tmp_path / "usr" / "chromedriver"),
                 "apt-get install chromium chromium-driver", "set CHROMIUM and CHROMEDRIVER"):
        assert hint in result.stderr
    assert why in result.stderr  # and why


def test_an_install_that_leaves_them_missing_fails(tmp_path):
    # apt-get puts them in /usr/bin: a CHROMIUM set to another path is still missing afterwards.
    result, calls = _run(tmp_path, apt_get_installs=False)
    assert result.returncode == 1
    assert calls == ["apt-get DEBIAN_FRONTEND= update -qq", APT_GET_INSTALL]
    assert "still not found" in result.stderr and result.stderr.count("\n") == 1


def test_make_test_sets_up_then_runs_pytest_and_ci_only_calls_it():
    # make -n prints the recipes without running them: the venv, the browser, then pytest.
    # --no-print-directory: under `make test` (MAKELEVEL 1) make would add "Entering directory" lines.
    dry_run = subprocess.run(["make", "-n", "--no-print-directory", "test"], cwd=REPO, capture_output=True,
                             text=True, timeout=30)
    assert dry_run.returncode == 0, dry_run.stderr
    lines = dry_run.stdout.splitlines()
    assert lines[:2] == ["scripts/ensure_venv.sh", "scripts/ensure_browser.sh"]
    assert "pytest" in lines[2] and "--durations=15" in lines[2]
    assert "-n auto" in lines[2] and "--dist loadfile" in lines[2]  # both cores, a file's runs on one worker
    # .ci/run installs make alone (make cannot install make): the rest is make test's.
    ci = (REPO / ".ci" / "run").read_text()
    assert [line.split()[-1] for line in ci.splitlines() if "apt-get install" in line] == ["make"]
    assert "\nmake test\n" in ci
