"""One `happysad run` per pipeline root at a time, and what a killed run left behind.

Two runs on one root would share the ingested TFRecords and the ML Metadata
store and read each other's results, so the second waits for nothing: it
stops at once with a message naming the first. Holding the lock also proves
that no run is alive on the root, so any execution ML Metadata still shows as
RUNNING belongs to a run that was killed (kill -9, power loss): recover()
marks it CANCELED, says why, and removes the outputs it never published.
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import shutil
import time
from pathlib import Path

LOCK_FILE = ".happysad-run.lock"
ABANDONED_PROPERTY = "abandoned"  # custom property on an execution marked CANCELED by recover()


class RootBusy(RuntimeError):
    """Another run holds the pipeline root."""


@contextlib.contextmanager
def exclusive(pipeline_root: Path):
    """Holds the root's lock for the block; RootBusy if another process has it.
    The kernel drops the lock when its process dies, so a killed run never
    leaves the root locked."""
    pipeline_root.mkdir(parents=True, exist_ok=True)
    path = pipeline_root / LOCK_FILE
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise RootBusy(f"another happysad run ({holder}) is using the pipeline root {pipeline_root}: wait "
                           "for it to finish, or give this run another --pipeline-root") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)


def recover(pipeline_root: Path, metadata_path: Path, examples_dir: Path) -> list:
    """Under the lock: marks executions left RUNNING (or NEW) by a killed run as
    CANCELED, removes their unpublished output folders and ingestion's
    temporary files. Returns one sentence per thing it did."""
    notes = []
    for tmp in sorted(glob.glob(str(examples_dir / ".*.tmp"))):
        os.unlink(tmp)
        notes.append(f"removed {tmp}, left by a killed ingestion")
    if not metadata_path.exists():
        return notes
    from ml_metadata.proto import metadata_store_pb2

    from happysad.pipeline import metadata

    store = metadata.open_store(str(metadata_path), writable=True)
    State = metadata_store_pb2.Execution.State
    stale = [e for e in store.get_executions() if e.last_known_state in (State.RUNNING, State.NEW)]
    for execution in stale:
        node = next((c.name.split(".", 1)[-1] for c in store.get_contexts_by_execution(execution.id)
                     if c.type == "node"), str(execution.type))
        execution.last_known_state = State.CANCELED
        execution.custom_properties[ABANDONED_PROPERTY].string_value = (
            f"found {metadata_store_pb2.Execution.State.Name(State.RUNNING)} with no run alive on "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}: its run was killed")
        store.put_executions([execution])
        # TFX writes outputs to <root>/<node>/<output key>/<execution id>/ and
        # publishes them only at the end: a killed execution's are orphans.
        removed = [d for d in glob.glob(str(pipeline_root / node / "*" / str(execution.id))) if os.path.isdir(d)]
        for folder in removed:
            shutil.rmtree(folder)
        notes.append(f"{node} (execution {execution.id}) was left running by a killed run: marked CANCELED"
                     + (f", {len(removed)} unpublished output folder(s) removed" if removed else ""))
    return notes
