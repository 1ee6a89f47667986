"""Resolvers that look back at earlier runs while leaving out this run's own output
or a rejected run's.

TFX's latest-artifact strategies return the newest artifact, which on an
unchanged (cached) re-run is this run's own output: the Evaluator would compare
the candidate with itself (and re-run, and the Pusher push it again), and the
drift check would compare the statistics with themselves. Both strategies here
drop what the producing node's latest execution (fresh or cached) output, so
the pipeline must make each resolver run after that node.

The Evaluator's baseline must also be one the Evaluator blessed (not the
TFLiteEvaluator, whose blessing of the same model type is its own verdict),
and one whose files still exist: a deleted model folder would make the
Evaluator die loading it.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional

from absl import logging
from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.components.common.resolver import ResolverStrategy
from tfx.dsl.io import fileio
from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from happysad.components.examples_artifact import span_of


def _node_executions(store, node_context: str) -> list:
    """Every execution of a node; node_context is its MLMD node context name, `<pipeline name>.<node id>`."""
    context = store.get_context_by_type_and_name("node", node_context)
    return store.get_executions_by_context(context.id) if context else []


def _output_ids(store, execution_ids: list) -> set:
    """Ids of the artifacts the executions output."""
    return {e.artifact_id for e in store.get_events_by_execution_ids(execution_ids)
            if e.type == metadata_store_pb2.Event.OUTPUT} if execution_ids else set()


def latest_output_ids(store, node_context: str) -> set:
    """Ids of the artifacts output by the latest execution of a node."""
    executions = _node_executions(store, node_context)
    return _output_ids(store, [max(executions, key=lambda e: e.id).id]) if executions else set()


_PASSED = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)


def accepted_output_ids(store, producer_context: str, gate_context: str) -> set:
    """Ids of the artifacts a node (`producer_context`) output in the runs
    where the DataGate (`gate_context`) passed: data that was validated and
    trained on, never a rejected run's."""
    def run_ids(execution_id: int) -> set:
        return {c.id for c in store.get_contexts_by_execution(execution_id) if c.type == "pipeline_run"}

    passed_runs = set()
    for gate in _node_executions(store, gate_context):
        if gate.last_known_state in _PASSED:
            passed_runs |= run_ids(gate.id)
    return _output_ids(store, [e.id for e in _node_executions(store, producer_context)
                               if run_ids(e.id) & passed_runs])


def _without(input_dict: Dict[str, List], excluded: set) -> Dict[str, List]:
    return {key: [a for a in artifacts if a.id not in excluded] for key, artifacts in input_dict.items()}


def model_files_exist(model) -> bool:
    """Whether a Model artifact's SavedModel is still on disk."""
    serving = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
    return bool(model.uri) and fileio.exists(os.path.join(serving, "saved_model.pb"))


class LatestBlessedOtherModelStrategy(LatestBlessedModelStrategy):
    """The Evaluator's baseline: the latest model that the Evaluator
    (`blessing_context`, its node) blessed, other than the candidate (what
    `producer_context`, the Trainer, output last), whose SavedModel still
    exists; none if there is no such model. A blessing from any other node
    (the TFLiteEvaluator's) does not count; a model whose files are gone is
    skipped, with a warning in the run's log."""

    def __init__(self, producer_context: str, blessing_context: str):
        self._producer_context, self._blessing_context = producer_context, blessing_context

    def resolve_artifacts(self, store, input_dict: Dict[str, List]) -> Optional[Dict[str, List]]:
        candidates = _without(input_dict, latest_output_ids(store, self._producer_context))
        evaluators = _output_ids(store, [e.id for e in _node_executions(store, self._blessing_context)])
        kept = {}
        for key, artifacts in candidates.items():
            kept[key] = []
            for artifact in artifacts:
                if isinstance(artifact, standard_artifacts.ModelBlessing) and artifact.id not in evaluators:
                    continue
                if isinstance(artifact, standard_artifacts.Model) and not model_files_exist(artifact):
                    logging.warning("Model %d at %s is not a baseline: its files are gone", artifact.id,
                                    artifact.uri)
                    continue
                kept[key].append(artifact)
        return super().resolve_artifacts(store, kept)


class PreviousAcceptedArtifactStrategy(LatestArtifactStrategy):
    """The newest artifact other than what `producer_context` output last, from
    a run whose DataGate (`gate_context`) passed: the drift check's baseline is
    the last data that was accepted, so one rejected (drifted) run does not
    become the yardstick for the next. Empty when there is none (a first run):
    the base class's own answer, None, would be recorded in ML Metadata as a
    FAILED resolver execution."""

    def __init__(self, producer_context: str, gate_context: str):
        super().__init__()
        self._producer_context, self._gate_context = producer_context, gate_context

    def resolve_artifacts(self, store, input_dict: Dict[str, List]) -> Optional[Dict[str, List]]:
        accepted = accepted_output_ids(store, self._producer_context, self._gate_context)
        candidates = _without(input_dict, latest_output_ids(store, self._producer_context))
        return self._resolve({key: [a for a in artifacts if a.id in accepted] for key, artifacts in candidates.items()})


class AcceptedSpansStrategy(ResolverStrategy):
    """The Trainer's rolling window: the latest `num_spans` spans of
    ImportExampleGen's output (`producer_context`) whose data passed the
    DataGate (`gate_context`), one Examples artifact per span (its newest
    version), oldest span first. Runs after this run's DataGate, so this run's
    span is in it; a rejected span never is."""

    def __init__(self, producer_context: str, gate_context: str, num_spans: int):
        self._producer_context, self._gate_context = producer_context, gate_context
        self._num_spans = num_spans

    def resolve_artifacts(self, store, input_dict: Dict[str, List]) -> Optional[Dict[str, List]]:
        accepted = accepted_output_ids(store, self._producer_context, self._gate_context)
        newest = {}  # span -> its newest accepted artifact
        for artifacts in input_dict.values():
            for artifact in artifacts:
                if artifact.id not in accepted:
                    continue
                span = span_of(artifact.mlmd_artifact)
                if span not in newest or artifact.id > newest[span].id:
                    newest[span] = artifact
        window = sorted(newest)[-self._num_spans:]
        return {key: [newest[span] for span in window] for key in input_dict}
