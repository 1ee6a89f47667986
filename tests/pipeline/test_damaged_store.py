"""A damaged ML Metadata store (metadata.sqlite) is named, with what to do, by
`happysad run` and `happysad inspect`: an exit status of 1 and one sentence,
no traceback. The store is checked in one place, metadata.open_store().

The damaged stores, made from a real MLMD SQLite store (one MLMD wrote, with
types, executions and artifacts): random bytes instead; its first half; and
one page of its Artifact table overwritten, which MLMD opens without a word
and fails on at its first query (so the check, not MLMD, is what names it).
"""
import os
import sqlite3
import subprocess

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from happysad.data import emoji_faces
from happysad.pipeline import metadata

from helpers import HAPPYSAD, REPO

ADVICE = "move it aside or delete the pipeline root to start afresh"


def _real_store(path) -> None:
    """An ML Metadata store as MLMD writes it, with some artifacts and executions in it."""
    store = metadata_store.MetadataStore(metadata.connection_config(str(path)))
    artifact_type = store.put_artifact_type(metadata_store_pb2.ArtifactType(name="Model"))
    execution_type = store.put_execution_type(metadata_store_pb2.ExecutionType(name="Trainer"))
    artifacts = store.put_artifacts([metadata_store_pb2.Artifact(type_id=artifact_type, uri=f"/models/{i}" * 20)
                                     for i in range(300)])
    executions = store.put_executions([metadata_store_pb2.Execution(type_id=execution_type) for _ in artifacts])
    store.put_events([metadata_store_pb2.Event(artifact_id=a, execution_id=e, type=metadata_store_pb2.Event.OUTPUT)
                      for a, e in zip(artifacts, executions)])
    del store


def _corrupt_page(real: bytes, path) -> bytes:
    """The store with the last page of its Artifact table's rows overwritten by random bytes."""
    with sqlite3.connect(str(path)) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        pages = [row[0] for row in db.execute("SELECT pageno FROM dbstat WHERE name = 'Artifact' AND pagetype = 'leaf'")]
    start = (pages[-1] - 1) * page_size
    return real[:start] + os.urandom(page_size) + real[start + page_size:]


@pytest.fixture(params=["random bytes", "truncated", "corrupted page"])
def damaged_root(request, tmp_path):
    root = tmp_path / "pipeline_output"
    root.mkdir()
    _real_store(tmp_path / "real.sqlite")
    real = (tmp_path / "real.sqlite").read_bytes()
    assert len(real) > 8192
    damaged = {"random bytes": lambda: os.urandom(len(real)), "truncated": lambda: real[:len(real) // 2],
               "corrupted page": lambda: _corrupt_page(real, tmp_path / "real.sqlite")}[request.param]()
    (root / "metadata.sqlite").write_bytes(damaged)
    return root


def _happysad(*args):
    return subprocess.run([HAPPYSAD, *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def _assert_named(result, root) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"the ML Metadata store at {root / 'metadata.sqlite'} is damaged: " in result.stderr, output
    assert ADVICE in result.stderr, output
    assert "Traceback" not in output, output


def test_inspect_names_a_damaged_store(damaged_root):
    _assert_named(_happysad("inspect", "--pipeline-root", str(damaged_root)), damaged_root)


def test_run_names_a_damaged_store_and_runs_nothing(damaged_root, tmp_path):
    result = _happysad("run", "--data", str(emoji_faces.DEFAULT_DIR), "--pipeline-root", str(damaged_root),
                       "--serving-dir", str(tmp_path / "serving"), "--arch", "reference")
    _assert_named(result, damaged_root)
    assert not (damaged_root / "tfrecords").exists()  # stopped before ingesting anything


def test_an_intact_store_passes_the_check(tmp_path):
    _real_store(tmp_path / "real.sqlite")
    metadata.check_store(str(tmp_path / "real.sqlite"))
    assert metadata.open_store(str(tmp_path / "real.sqlite")).get_artifacts()
    (tmp_path / "empty.sqlite").touch()  # an empty file: SQLite opens it, but it is no MLMD store
    with pytest.raises(metadata.StoreDamaged, match="damaged: it has none of ML Metadata's tables"):
        metadata.open_store(str(tmp_path / "empty.sqlite"))
