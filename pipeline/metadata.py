"""ML Metadata access: the one place that opens the store and walks its contexts.

The runner hands connection_config() to TFX, which writes; everything else
here reads: the runs of a pipeline, the executions of a run or a node, and
the artifacts an execution read or wrote. open_store() checks the store
before anything uses it (a run's recovery opens it first, before TFX does):
a damaged one raises StoreDamaged, naming it and what to do, not a traceback
from MLMD's first query.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import urllib.parse
from typing import Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

INPUT, OUTPUT = metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.OUTPUT


def connection_config(sqlite_path: str, read_only: bool = False) -> metadata_store_pb2.ConnectionConfig:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = sqlite_path
    config.sqlite.connection_mode = (metadata_store_pb2.SqliteMetadataSourceConfig.READONLY if read_only
                                     else metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE)
    return config


class StoreDamaged(LookupError):
    """The store's file is there but is no readable ML Metadata store: not a
    SQLite database, a truncated or corrupted one, or one without MLMD's tables."""

    def __init__(self, sqlite_path: str, reason: str):
        self.path, self.reason = sqlite_path, reason
        super().__init__(f"the ML Metadata store at {sqlite_path} is damaged: {reason}; move it aside or delete "
                         f"the pipeline root to start afresh")


# Tables every MLMD SQLite store has (the schema MLMD 1.16 creates).
MLMD_TABLES = frozenset({"Artifact", "Context", "Event", "Execution", "MLMDEnv", "Type"})


def check_store(sqlite_path: str) -> None:
    """StoreDamaged unless the file is an intact SQLite database (SQLite's
    quick_check, read-only) with ML Metadata's tables."""
    uri = f"file:{urllib.parse.quote(os.path.abspath(sqlite_path))}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            verdict = [row[0] for row in db.execute("PRAGMA quick_check")]
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as e:
        raise StoreDamaged(sqlite_path, f"SQLite: {e}") from None
    if verdict != ["ok"]:
        raise StoreDamaged(sqlite_path, "SQLite's check: " + "; ".join(" ".join(v.split()) for v in verdict[:3]))
    missing = sorted(MLMD_TABLES - tables)
    if missing:
        raise StoreDamaged(sqlite_path, "it has none of ML Metadata's tables" if not tables else
                           f"ML Metadata's tables {', '.join(missing)} are missing")


def open_store(sqlite_path: str, writable: bool = False):
    """The store at sqlite_path, checked (check_store) before use. LookupError
    if there is no store (no run yet); StoreDamaged (a LookupError) if it is damaged."""
    if not os.path.exists(sqlite_path):
        raise LookupError(f"no ML Metadata store at {sqlite_path} (run the pipeline first, or give its root)")
    check_store(sqlite_path)
    try:
        return metadata_store.MetadataStore(connection_config(sqlite_path, read_only=not writable))
    except RuntimeError as e:  # MLMD's own checks (its schema version, its tables)
        raise StoreDamaged(sqlite_path, f"ML Metadata: {str(e).splitlines()[0][:300]}") from None


def list_runs(store, pipeline_name: str) -> list:
    """The pipeline's run contexts in MLMD, oldest first."""
    pipeline_ctx = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_ctx is None:
        return []
    runs = [c for c in store.get_contexts_by_type("pipeline_run")
            if pipeline_ctx.id in {p.id for p in store.get_parent_contexts_by_context(c.id)}]
    return sorted(runs, key=lambda c: (c.create_time_since_epoch, c.id))


def run_ids(sqlite_path: str, pipeline_name: str) -> set:
    """The names of the pipeline's runs (empty before the store exists; StoreDamaged if it is damaged)."""
    if not os.path.exists(sqlite_path):
        return set()
    return {r.name for r in list_runs(open_store(sqlite_path), pipeline_name)}


def find_run(store, pipeline_name: str, run_id: Optional[str] = None):
    """The run context named run_id (default: the newest); LookupError naming the recorded runs."""
    runs = list_runs(store, pipeline_name)
    if not runs:
        raise LookupError(f"pipeline {pipeline_name!r} has no recorded run")
    if run_id is None:
        return runs[-1]
    run = next((r for r in runs if r.name == run_id), None)
    if run is None:
        raise LookupError(f"no run {run_id!r} of {pipeline_name!r}; recorded runs: "
                          + ", ".join(r.name for r in runs[-10:]))
    return run


def executions(store, context) -> list:
    """The executions in a context (a run, or a node), oldest first."""
    return sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)


def node_executions(store, pipeline_name: str, node_id: str) -> list:
    """Every execution of one component, across runs, oldest first."""
    context = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node_id}")
    return executions(store, context) if context is not None else []


def node_of(store, execution) -> str:
    """The component an execution belongs to (its node context, without the pipeline name)."""
    node = next((c.name for c in store.get_contexts_by_execution(execution.id) if c.type == "node"), None)
    return (node or str(execution.type)).split(".", 1)[-1]


def artifacts(store, execution_id: int, direction=OUTPUT) -> dict:
    """{input or output key: [Artifact]} of one execution."""
    events = [e for e in store.get_events_by_execution_ids([execution_id]) if e.type == direction]
    by_id = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    found: dict = {}
    for event in events:
        key = event.path.steps[0].key if event.path.steps else "?"
        found.setdefault(key, []).append(by_id[event.artifact_id])
    return found
