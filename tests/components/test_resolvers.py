"""The resolvers that look back at earlier runs, against a real (in-memory) MLMD store."""
import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.types import standard_artifacts

from happysad.components import resolvers

PIPELINE = "happysad"


@pytest.fixture
def store():
    config = metadata_store_pb2.ConnectionConfig()
    config.fake_database.SetInParent()
    return metadata_store.MetadataStore(config)


def _artifact(store, artifact_class, **int_properties):
    artifact = artifact_class()
    artifact.type_id = store.put_artifact_type(artifact.artifact_type)
    for name, value in int_properties.items():
        artifact.set_int_custom_property(name, value)
    [artifact.id] = store.put_artifacts([artifact.mlmd_artifact])
    return artifact


def _context(store, type_name: str, name: str) -> int:
    context_type = store.put_context_type(metadata_store_pb2.ContextType(name=type_name))
    context = store.get_context_by_type_and_name(type_name, name)
    if context is not None:
        return context.id
    [context_id] = store.put_contexts([metadata_store_pb2.Context(type_id=context_type, name=name)])
    return context_id


def _execution(store, node: str, outputs: list, run: str = "", state=metadata_store_pb2.Execution.COMPLETE) -> None:
    """One execution of `node` (in its MLMD node context, and in the pipeline
    run context `run` if given) that output `outputs`."""
    contexts = [_context(store, "node", f"{PIPELINE}.{node}")]
    if run:
        contexts.append(_context(store, "pipeline_run", run))
    execution_type = store.put_execution_type(metadata_store_pb2.ExecutionType(name=node))
    execution = metadata_store_pb2.Execution(type_id=execution_type, last_known_state=state)
    [execution_id] = store.put_executions([execution])
    store.put_attributions_and_associations([], [metadata_store_pb2.Association(
        context_id=context_id, execution_id=execution_id) for context_id in contexts])
    events = []
    for artifact in outputs:
        event = metadata_store_pb2.Event(artifact_id=artifact.id, execution_id=execution_id,
                                         type=metadata_store_pb2.Event.OUTPUT)
        event.path.steps.add().key = "out"
        events.append(event)
    store.put_events(events)


def _model_and_blessing(store, blessed=True):
    model = _artifact(store, standard_artifacts.Model)
    blessing = _artifact(store, standard_artifacts.ModelBlessing, current_model_id=model.id, blessed=int(blessed))
    return model, blessing


def test_latest_output_ids_are_those_of_the_nodes_newest_execution(store):
    first, second = _artifact(store, standard_artifacts.Model), _artifact(store, standard_artifacts.Model)
    _execution(store, "Trainer", [first])
    _execution(store, "Trainer", [second])
    assert resolvers.latest_output_ids(store, f"{PIPELINE}.Trainer") == {second.id}
    assert resolvers.latest_output_ids(store, f"{PIPELINE}.Evaluator") == set()  # never ran


def test_the_baseline_is_the_latest_blessed_model_other_than_the_candidate(store):
    older, older_blessing = _model_and_blessing(store)
    candidate, candidate_blessing = _model_and_blessing(store)  # a cached re-run: the candidate is blessed
    _execution(store, "Trainer", [older])
    _execution(store, "Trainer", [candidate])
    strategy = resolvers.LatestBlessedOtherModelStrategy(f"{PIPELINE}.Trainer")
    resolved = strategy.resolve_artifacts(store, {"model": [older, candidate],
                                                  "model_blessing": [older_blessing, candidate_blessing]})
    assert [m.id for m in resolved["model"]] == [older.id]
    assert [b.id for b in resolved["model_blessing"]] == [older_blessing.id]


def test_no_baseline_when_no_other_model_was_blessed(store):
    older, older_blessing = _model_and_blessing(store, blessed=False)
    candidate, candidate_blessing = _model_and_blessing(store)
    _execution(store, "Trainer", [older])
    _execution(store, "Trainer", [candidate])
    strategy = resolvers.LatestBlessedOtherModelStrategy(f"{PIPELINE}.Trainer")
    resolved = strategy.resolve_artifacts(store, {"model": [older, candidate],
                                                  "model_blessing": [older_blessing, candidate_blessing]})
    assert resolved == {"model": [], "model_blessing": []}


PASSED, FAILED, CACHED = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.FAILED,
                          metadata_store_pb2.Execution.CACHED)


def _run(store, run: str, gate_state, **outputs) -> None:
    """One pipeline run: each node in `outputs` output its artifacts, then the DataGate ended in gate_state."""
    for node, artifacts in outputs.items():
        _execution(store, node, artifacts, run)
    _execution(store, "DataGate", [], run, gate_state)


def test_the_drift_baseline_is_the_last_accepted_runs_statistics_not_a_rejected_ones(store):
    accepted, rejected, current = (_artifact(store, standard_artifacts.ExampleStatistics) for _ in range(3))
    strategy = resolvers.PreviousAcceptedArtifactStrategy(f"{PIPELINE}.StatisticsGen", f"{PIPELINE}.DataGate")
    _run(store, "run-1", PASSED, StatisticsGen=[accepted])
    assert strategy.resolve_artifacts(store, {"statistics": [accepted]}) == {"statistics": []}  # first run
    _run(store, "run-2", FAILED, StatisticsGen=[rejected])  # drifted: the gate stopped it
    _execution(store, "StatisticsGen", [current], "run-3")  # this run, before its own gate
    resolved = strategy.resolve_artifacts(store, {"statistics": [accepted, rejected, current]})
    assert [s.id for s in resolved["statistics"]] == [accepted.id]


def test_a_cached_gate_counts_as_passed(store):
    first, second = (_artifact(store, standard_artifacts.ExampleStatistics) for _ in range(2))
    _run(store, "run-1", CACHED, StatisticsGen=[first])
    _execution(store, "StatisticsGen", [second], "run-2")
    strategy = resolvers.PreviousAcceptedArtifactStrategy(f"{PIPELINE}.StatisticsGen", f"{PIPELINE}.DataGate")
    assert [s.id for s in strategy.resolve_artifacts(store, {"statistics": [first, second]})["statistics"]] == \
        [first.id]


def _span(store, span: int):
    examples = _artifact(store, standard_artifacts.Examples)
    examples.span = span
    store.put_artifacts([examples.mlmd_artifact])
    return examples


def test_the_training_window_is_the_latest_accepted_spans_oldest_first(store):
    one, two, three, four = (_span(store, n) for n in (1, 2, 3, 4))
    one_again = _span(store, 1)  # span 1 ingested again (new files): its newest version counts
    _run(store, "run-1", PASSED, ImportExampleGen=[one])
    _run(store, "run-2", FAILED, ImportExampleGen=[two])  # drifted: rejected
    _run(store, "run-3", PASSED, ImportExampleGen=[three])
    _run(store, "run-4", PASSED, ImportExampleGen=[one_again])
    _run(store, "run-5", PASSED, ImportExampleGen=[four])  # this run: its gate has passed
    everything = {"examples": [one, two, three, one_again, four]}

    def window(num_spans: int) -> list:
        strategy = resolvers.AcceptedSpansStrategy(f"{PIPELINE}.ImportExampleGen", f"{PIPELINE}.DataGate", num_spans)
        return [a.id for a in strategy.resolve_artifacts(store, everything)["examples"]]

    assert window(3) == [one_again.id, three.id, four.id]  # span 2 was rejected: never trained on
    assert window(2) == [three.id, four.id]
    assert window(10) == [one_again.id, three.id, four.id]
