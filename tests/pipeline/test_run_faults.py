"""`happysad run` under faults: a second run on the same root, and a run killed with SIGKILL."""
import os
import signal
import subprocess
import time
from pathlib import Path

from ml_metadata.proto import metadata_store_pb2

from happysad.data import emoji_faces
from happysad.pipeline import configs, metadata

from helpers import HAPPYSAD, REPO

State = metadata_store_pb2.Execution.State


def _command(root: Path, serving: Path, *extra):
    # The reference CNN: the faster model; these are tests of the run, not of the model.
    return [HAPPYSAD, "run", "--data", str(emoji_faces.DEFAULT_DIR), "--pipeline-root", str(root),
            "--serving-dir", str(serving), "--arch", "reference", *extra]


def _executions(root: Path, node: str):
    return metadata.node_executions(metadata.open_store(str(root / "metadata.sqlite")), configs.PIPELINE_NAME, node)


def test_a_killed_run_is_recovered_and_a_second_run_waits_for_nobody(tmp_path):
    root, serving = tmp_path / "pipeline_output", tmp_path / "serving_model"
    first = subprocess.Popen(_command(root, serving), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        for line in first.stdout:  # until the Trainer is training
            if "Trainer" in line and "running" in line:
                break
            assert time.monotonic() < deadline, "the Trainer never started"
        # Meanwhile, a second run on the same root is refused at once, naming the first.
        second = subprocess.run(_command(root, serving), cwd=REPO, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1, second.stdout + second.stderr
        assert f"another happysad run (pid {first.pid}," in second.stderr
        assert "give this run another --pipeline-root" in second.stderr
        time.sleep(2)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # kill -9: nothing gets to clean up
        first.wait()
    (trainer,) = _executions(root, "Trainer")
    assert trainer.last_known_state == State.RUNNING  # what the killed run left in ML Metadata
    orphans = list(root.glob(f"Trainer/*/{trainer.id}"))
    assert orphans, "expected the killed Trainer's unpublished output folders"

    third = subprocess.run(_command(root, serving), cwd=REPO, capture_output=True, text=True, timeout=900)
    assert third.returncode == 0, third.stdout + third.stderr
    assert (f"note: Trainer (execution {trainer.id}) was left running by a killed run: marked CANCELED, "
            f"{len(orphans)} unpublished output folder(s) removed") in third.stdout
    killed, retrained = _executions(root, "Trainer")
    assert killed.last_known_state == State.CANCELED and "its run was killed" in \
        killed.custom_properties["abandoned"].string_value
    assert retrained.last_known_state == State.COMPLETE
    assert not any(p.exists() for p in orphans)
    # The summary is this run's own: its Trainer, and a pushed model.
    assert "pushed: " in third.stdout and "blessed: yes" in third.stdout
    inspect = subprocess.run([HAPPYSAD, "inspect", "--pipeline-root", str(root), "--run",
                              _run_of(root, killed)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert "note: Trainer CANCELED: found RUNNING" in inspect.stdout, inspect.stdout + inspect.stderr


def _run_of(root: Path, execution) -> str:
    store = metadata.open_store(str(root / "metadata.sqlite"))
    return next(c.name for c in store.get_contexts_by_execution(execution.id) if c.type == "pipeline_run")
