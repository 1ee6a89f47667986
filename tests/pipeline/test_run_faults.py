"""`happysad run` under faults: a second run on the same root, and a run killed with SIGKILL."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from happysad.data import emoji_faces

REPO = Path(__file__).resolve().parents[2]
HAPPYSAD = str(Path(sys.executable).parent / "happysad")
State = metadata_store_pb2.Execution.State


def _command(root: Path, serving: Path, *extra):
    return [HAPPYSAD, "run", "--data", str(emoji_faces.DEFAULT_DIR), "--pipeline-root", str(root),
            "--serving-dir", str(serving), *extra]


def _executions(root: Path, node: str):
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(root / "metadata.sqlite")
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    store = metadata_store.MetadataStore(config)
    context = store.get_context_by_type_and_name("node", f"happysad.{node}")
    return sorted(store.get_executions_by_context(context.id), key=lambda e: e.id) if context else []


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
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(root / "metadata.sqlite")
    store = metadata_store.MetadataStore(config)
    return next(c.name for c in store.get_contexts_by_execution(execution.id) if c.type == "pipeline_run")
