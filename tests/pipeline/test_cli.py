"""Command-line checks that need no pipeline run."""
import subprocess

import pytest

from helpers import HAPPYSAD, REPO


def _happysad(*args, cwd=REPO):
    return subprocess.run([HAPPYSAD, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--threshold", "1.5"], "--threshold is an accuracy"),
    (["--learning-rate", "0"], "--learning-rate must be positive"),
    (["--learning-rate", "inf"], "--learning-rate must be positive and finite (got inf)"),
    (["--learning-rate", "nan"], "--learning-rate must be positive and finite (got nan)"),
    (["--pipeline-root", "/proc/happysad"], "--pipeline-root /proc/happysad: cannot write there"),
    (["--pipeline-root", "README.md"], "--pipeline-root README.md: is a file, not a folder"),
    (["--serving-dir", "README.md/serving"], "--serving-dir README.md/serving: README.md is a file, not a folder"),
    (["--data", "/no/such/folder"], "/no/such/folder: no such folder"),
    (["--runner", "kubeflow"], "invalid choice"),
    (["--arch", "resnet50"], "--arch: invalid choice: 'resnet50' (choose from 'reference', 'lite0')"),
    (["--tfrecords", "/tmp", "--data", "/tmp"], "not both"),
    (["--tfrecords", "/no/such/folder"], "no *.tfrecord.gz files there"),
    (["--classes", "happy"], "--classes needs at least two distinct names"),
])
def test_bad_run_flags_are_refused_with_the_flag_named(args, message):
    result = _happysad("run", *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_generate_writes_the_requested_faces(tmp_path):
    result = _happysad("generate", "--out", str(tmp_path / "faces"), "--count", "6", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "faces" / "sad").iterdir()) == [
        "sad_000.png", "sad_001.png", "sad_002.png"]


def test_generate_draws_the_wide_family_on_request(tmp_path):
    for family in ("classic", "wide"):
        result = _happysad("generate", "--family", family, "--out", str(tmp_path / family), "--count", "4",
                           "--seed", "3")
        assert result.returncode == 0 and f"wrote 4 {family} faces" in result.stdout, result.stderr
    assert (tmp_path / "classic" / "sad" / "sad_000.png").read_bytes() != \
        (tmp_path / "wide" / "sad" / "sad_000.png").read_bytes()
    bad = _happysad("generate", "--family", "cubist", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "invalid choice: 'cubist'" in bad.stderr


def test_generate_draws_the_extra_expressions_and_refuses_unknown_ones(tmp_path):
    result = _happysad("generate", "--out", str(tmp_path / "faces"), "--count", "8", "--classes",
                       "happy,sad,surprised,angry")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "faces").iterdir()) == ["angry", "happy", "sad", "surprised"]
    bad = _happysad("generate", "--out", str(tmp_path / "more"), "--count", "4", "--classes", "happy,bored")
    assert bad.returncode == 2 and "two or more of happy, sad, surprised, angry" in bad.stderr


def test_ingest_of_a_one_class_folder_says_what_to_fix(tmp_path):
    (tmp_path / "images" / "happy").mkdir(parents=True)
    result = _happysad("ingest", "--data", str(tmp_path / "images"), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "needs at least two" in result.stderr and "one sub-folder per class" in result.stderr
