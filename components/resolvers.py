"""Resolvers that look back at earlier runs while leaving out this run's own output.

TFX's latest-artifact strategies return the newest artifact, which on an
unchanged (cached) re-run is this run's own output: the Evaluator would compare
the candidate with itself (and re-run, and the Pusher push it again), and the
drift check would compare the statistics with themselves. Both strategies here
drop what the producing node's latest execution (fresh or cached) output, so
the pipeline must make each resolver run after that node.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)


def latest_output_ids(store, node_context: str) -> set:
    """Ids of the artifacts output by the latest execution of a node.
    node_context is its MLMD node context name, `<pipeline name>.<node id>`."""
    context = store.get_context_by_type_and_name("node", node_context)
    if context is None:
        return set()
    executions = store.get_executions_by_context(context.id)
    if not executions:
        return set()
    latest = max(executions, key=lambda e: e.id)
    return {e.artifact_id for e in store.get_events_by_execution_ids([latest.id])
            if e.type == metadata_store_pb2.Event.OUTPUT}


def _without(input_dict: Dict[str, List], excluded: set) -> Dict[str, List]:
    return {key: [a for a in artifacts if a.id not in excluded] for key, artifacts in input_dict.items()}


class LatestBlessedOtherModelStrategy(LatestBlessedModelStrategy):
    """The Evaluator's baseline: the latest blessed model other than the
    candidate, i.e. other than what `producer_context` (the Trainer) output last."""

    def __init__(self, producer_context: str):
        self._producer_context = producer_context

    def resolve_artifacts(self, store, input_dict: Dict[str, List]) -> Optional[Dict[str, List]]:
        return super().resolve_artifacts(store, _without(input_dict, latest_output_ids(store, self._producer_context)))


class PreviousArtifactStrategy(LatestArtifactStrategy):
    """The newest artifact other than what `producer_context` output last: the
    previous run's statistics, the baseline of the drift check. Empty on the
    first run: the base class would then return None, which MLMD records as a
    FAILED resolver execution; an empty list is the honest answer."""

    def __init__(self, producer_context: str):
        super().__init__()
        self._producer_context = producer_context

    def resolve_artifacts(self, store, input_dict: Dict[str, List]) -> Optional[Dict[str, List]]:
        return self._resolve(_without(input_dict, latest_output_ids(store, self._producer_context)))
