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


def _model_and_blessing(store, folder, blessed=True, blessed_by="Evaluator"):
    """A model whose files exist under `folder`, and the blessing `blessed_by` (a node) output for it."""
    model = _artifact(store, standard_artifacts.Model)
    model.uri = str(folder / f"model-{model.id}")
    (folder / f"model-{model.id}" / "Format-Serving").mkdir(parents=True)
    (folder / f"model-{model.id}" / "Format-Serving" / "saved_model.pb").write_bytes(b"graph")
    store.put_artifacts([model.mlmd_artifact])
    blessing = _artifact(store, standard_artifacts.ModelBlessing, current_model_id=model.id, blessed=int(blessed))
    _execution(store, blessed_by, [blessing])
    return model, blessing


def _baseline(store, models, blessings) -> tuple:
    """The ids of the model and blessing the Evaluator's baseline resolver picks."""
    strategy = resolvers.LatestBlessedOtherModelStrategy(f"{PIPELINE}.Trainer", f"{PIPELINE}.Evaluator")
    resolved = strategy.resolve_artifacts(store, {"model": list(models), "model_blessing": list(blessings)})
    return [m.id for m in resolved["model"]], [b.id for b in resolved["model_blessing"]]


def test_the_baseline_is_the_latest_blessed_model_other_than_the_candidate(store, tmp_path):
    older, older_blessing = _model_and_blessing(store, tmp_path)
    candidate, candidate_blessing = _model_and_blessing(store, tmp_path)  # a cached re-run: the candidate is blessed
    _execution(store, "Trainer", [older])
    _execution(store, "Trainer", [candidate])
    assert _baseline(store, [older, candidate], [older_blessing, candidate_blessing]) == \
        ([older.id], [older_blessing.id])


def test_no_baseline_when_no_other_model_was_blessed(store, tmp_path):
    older, older_blessing = _model_and_blessing(store, tmp_path, blessed=False)
    candidate, candidate_blessing = _model_and_blessing(store, tmp_path)
    _execution(store, "Trainer", [older])
    _execution(store, "Trainer", [candidate])
    assert _baseline(store, [older, candidate], [older_blessing, candidate_blessing]) == ([], [])


def test_only_the_evaluators_blessing_makes_a_baseline_not_the_tflite_evaluators(store, tmp_path):
    """A model the TFLiteEvaluator blessed and the Evaluator did not was the baseline."""
    oldest, oldest_blessing = _model_and_blessing(store, tmp_path)
    newer, rejected = _model_and_blessing(store, tmp_path, blessed=False)
    tflite_blessing = _artifact(store, standard_artifacts.ModelBlessing, current_model_id=newer.id, blessed=1)
    _execution(store, "TFLiteEvaluator", [tflite_blessing])
    candidate, _ = _model_and_blessing(store, tmp_path, blessed=False)
    for model in (oldest, newer, candidate):
        _execution(store, "Trainer", [model])
    assert _baseline(store, [oldest, newer, candidate], [oldest_blessing, rejected, tflite_blessing]) == \
        ([oldest.id], [oldest_blessing.id])
    # Blessings from no recorded node (an import, another pipeline's) do not count either.
    stray = _artifact(store, standard_artifacts.ModelBlessing, current_model_id=newer.id, blessed=1)
    assert _baseline(store, [oldest, newer, candidate], [oldest_blessing, stray]) == \
        ([oldest.id], [oldest_blessing.id])


def test_a_blessed_model_whose_files_are_gone_is_skipped_for_an_older_one(store, tmp_path):
    """Its SavedModel deleted, the newest blessed model made the Evaluator die
    (OSError: SavedModel file does not exist)."""
    import shutil

    oldest, oldest_blessing = _model_and_blessing(store, tmp_path)
    newer, newer_blessing = _model_and_blessing(store, tmp_path)
    candidate, _ = _model_and_blessing(store, tmp_path, blessed=False)
    for model in (oldest, newer, candidate):
        _execution(store, "Trainer", [model])
    blessings = [oldest_blessing, newer_blessing]
    shutil.rmtree(newer.uri)
    assert _baseline(store, [oldest, newer, candidate], blessings) == ([oldest.id], [oldest_blessing.id])
    (tmp_path / f"model-{oldest.id}" / "Format-Serving" / "saved_model.pb").unlink()  # a folder without its model
    assert _baseline(store, [oldest, newer, candidate], blessings) == ([], [])  # no baseline: none is left


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
