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


def _execution(store, node: str, outputs: list) -> None:
    """One execution of `node` (in its MLMD node context) that output `outputs`."""
    context_type = store.put_context_type(metadata_store_pb2.ContextType(name="node"))
    context = store.get_context_by_type_and_name("node", f"{PIPELINE}.{node}")
    if context is None:
        [context_id] = store.put_contexts([metadata_store_pb2.Context(type_id=context_type,
                                                                      name=f"{PIPELINE}.{node}")])
    else:
        context_id = context.id
    execution_type = store.put_execution_type(metadata_store_pb2.ExecutionType(name=node))
    execution = metadata_store_pb2.Execution(type_id=execution_type,
                                             last_known_state=metadata_store_pb2.Execution.COMPLETE)
    [execution_id] = store.put_executions([execution])
    store.put_attributions_and_associations([], [metadata_store_pb2.Association(
        context_id=context_id, execution_id=execution_id)])
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


def test_the_drift_baseline_is_the_previous_runs_statistics(store):
    first, second = _artifact(store, standard_artifacts.ExampleStatistics), \
        _artifact(store, standard_artifacts.ExampleStatistics)
    _execution(store, "StatisticsGen", [first])
    strategy = resolvers.PreviousArtifactStrategy(f"{PIPELINE}.StatisticsGen")
    assert strategy.resolve_artifacts(store, {"statistics": [first]}) == {"statistics": []}  # first run
    _execution(store, "StatisticsGen", [second])
    resolved = strategy.resolve_artifacts(store, {"statistics": [first, second]})
    assert [s.id for s in resolved["statistics"]] == [first.id]
