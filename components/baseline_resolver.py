"""The Evaluator's baseline: the latest blessed model other than the candidate.

TFX's LatestBlessedModelStrategy returns the latest blessed model, which on an
unchanged re-run is the candidate itself (the Trainer is cached). The Evaluator
then sees a new baseline, re-runs to compare the model with itself, and the
Pusher pushes the same model again under a new version. Excluding the
candidate keeps the Evaluator's inputs unchanged, so both stay cached.

The pipeline makes this resolver run after the Trainer, so the Trainer's latest
execution (fresh or cached) names the candidate.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)


class LatestBlessedOtherModelStrategy(LatestBlessedModelStrategy):
    """LatestBlessedModelStrategy that skips the models the Trainer's latest
    execution output. `trainer_context` is the Trainer's MLMD node context name
    (`<pipeline name>.<node id>`)."""

    def __init__(self, trainer_context: str):
        self._trainer_context = trainer_context

    def _candidate_ids(self, store) -> set:
        context = store.get_context_by_type_and_name("node", self._trainer_context)
        if context is None:
            return set()
        executions = store.get_executions_by_context(context.id)
        if not executions:
            return set()
        latest = max(executions, key=lambda e: e.id)
        return {e.artifact_id for e in store.get_events_by_execution_ids([latest.id])
                if e.type == metadata_store_pb2.Event.OUTPUT}

    def resolve_artifacts(self, store, input_dict: Dict[str, List]) -> Optional[Dict[str, List]]:
        excluded = self._candidate_ids(store)
        trimmed = {key: [a for a in artifacts if a.id not in excluded]
                   for key, artifacts in input_dict.items()}
        return super().resolve_artifacts(store, trimmed)
