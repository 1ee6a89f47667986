"""The run reader: a run read from an ML Metadata store as plain data, which the formatters need
no store to show; what it reads from StatisticsGen's output; what it keeps of what an artefact fixes."""
import json

from tensorflow_metadata.proto.v0 import statistics_pb2

from happysad.pipeline import run_record


def _statistics(folder, split, counts):
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    feature = stats.datasets.add().features.add()
    feature.path.step.append("class_name")
    for value, frequency in counts.items():
        feature.string_stats.top_values.add(value=value, frequency=frequency)
    (folder / f"Split-{split}").mkdir(parents=True)
    (folder / f"Split-{split}" / "FeatureStats.pb").write_bytes(stats.SerializeToString())
    return str(folder)


def test_class_balance_reads_statistics_gens_output(tmp_path):
    uri = _statistics(tmp_path / "now", "train", {"happy": 32, "sad": 16})
    assert run_record.class_balance(uri, "train") == {"happy": 32 / 48, "sad": 16 / 48}
    assert run_record.class_balance(uri, "eval") == {}


def test_what_an_artefact_fixes_is_read_once_and_a_damaged_cache_is_read_again(tmp_path):
    reads = []

    def read():
        reads.append(1)
        return {"metrics": {"binary_accuracy": 0.95}, "call": len(reads)}

    key = ["evaluation", "/root/Evaluator/evaluation/12", "happy", "sad"]
    first = run_record._cached(str(tmp_path), key, read)
    assert run_record._cached(str(tmp_path), key, read) == first and len(reads) == 1
    assert run_record._cached(str(tmp_path), [*key[:2], "sad", "happy"], read)["call"] == 2  # another key
    (damaged,) = [p for p in tmp_path.glob("*.json") if "call\": 1" in p.read_text()]
    damaged.write_text("{not json")
    assert run_record._cached(str(tmp_path), key, read)["call"] == 3
    assert not list(tmp_path.glob("*.partial"))


def _store_of_one_run(tmp_path) -> str:
    """An ML Metadata store holding one run as TFX records it (pipeline, run and node contexts,
    executions, output events): a Trainer whose model_run folder holds its summary and curves,
    and a Pusher that pushed version 7, with a model card beside it."""
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as pb

    from happysad import contract
    from happysad.pipeline import metadata

    model_run = tmp_path / "Trainer" / "model_run" / "2"
    model_run.mkdir(parents=True)
    (model_run / contract.TRAINING_SUMMARY_FILE).write_text(json.dumps({
        "epochs_run": 4, "threshold": 0.999, "threshold_epoch": 4, "final_accuracy": 1.0,
        "final_val_accuracy": 0.98, "class_names": ["happy", "sad"], "architecture": "reference"}))
    (model_run / contract.TRAINING_CURVES_FILE).write_bytes(PNG)
    pushed = tmp_path / "serving" / "happysad" / "7"
    pushed.mkdir(parents=True)
    (pushed / "model_card.html").write_text("<html></html>")

    sqlite = str(tmp_path / "metadata.sqlite")
    store = metadata_store.MetadataStore(metadata.connection_config(sqlite))
    context_type = {name: store.put_context_type(pb.ContextType(name=name))
                    for name in ("pipeline", "pipeline_run", "node")}
    pipeline_ctx, run_ctx, trainer_ctx, pusher_ctx = store.put_contexts([
        pb.Context(type_id=context_type["pipeline"], name="happysad"),
        pb.Context(type_id=context_type["pipeline_run"], name="20261206-1"),
        pb.Context(type_id=context_type["node"], name="happysad.Trainer"),
        pb.Context(type_id=context_type["node"], name="happysad.Pusher")])
    store.put_parent_contexts([pb.ParentContext(child_id=run_ctx, parent_id=pipeline_ctx)])
    model_run_type = store.put_artifact_type(pb.ArtifactType(name="ModelRun"))
    pushed_type = store.put_artifact_type(pb.ArtifactType(name="PushedModel"))
    pushed_properties = {"pushed": pb.Value(int_value=1), "pushed_destination": pb.Value(string_value=str(pushed)),
                         "pushed_version": pb.Value(string_value="7")}
    for node_ctx, node, artifact in (
            (trainer_ctx, "Trainer", pb.Artifact(type_id=model_run_type, uri=str(model_run))),
            (pusher_ctx, "Pusher", pb.Artifact(type_id=pushed_type, uri=str(tmp_path / "Pusher" / "3"),
                                               custom_properties=pushed_properties))):
        execution = pb.Execution(type_id=store.put_execution_type(pb.ExecutionType(name=node)),
                                 last_known_state=pb.Execution.COMPLETE)
        key = "model_run" if node == "Trainer" else "pushed_model"
        event = pb.Event(type=pb.Event.OUTPUT)
        event.path.steps.add().key = key
        store.put_execution(execution, [(artifact, event)], [
            pb.Context(id=run_ctx, type_id=context_type["pipeline_run"], name="20261206-1"),
            pb.Context(id=node_ctx, type_id=context_type["node"], name=f"happysad.{node}")])
    return sqlite


PNG = b"\x89PNG\r\n\x1a\n not a real picture"


def test_the_reader_returns_a_run_as_plain_data(tmp_path):
    sqlite = _store_of_one_run(tmp_path)
    record = run_record.read_run(sqlite, "happysad")
    assert record.run_id == "20261206-1"
    assert [(c.node_id, c.state) for c in record.components] == [("Trainer", "COMPLETE"), ("Pusher", "COMPLETE")]
    (pushed,) = record.component("Pusher").outputs["pushed_model"]
    assert isinstance(pushed, run_record.ArtifactRef)  # no MLMD type in what the formatters get
    assert pushed.properties == {"pushed": 1, "pushed_destination": record.pushed_dir, "pushed_version": "7"}
    assert record.training["threshold_epoch"] == 4 and record.training_curves_png == PNG
    assert record.pushed_version == "7" and record.model_card == str(tmp_path / "serving/happysad/7/model_card.html")
    assert record.blessed is None and record.metrics == {}  # no Evaluator in this run
    inspection = run_record.inspect_run(sqlite, "happysad", "20261206-1")
    (root,) = inspection.lineage  # from the pushed model
    pusher = record.component("Pusher").execution_id
    assert (root.artifact_type, root.producer) == ("PushedModel", f"Pusher (execution {pusher})")


def test_the_formatters_need_only_the_record_not_the_store(tmp_path, monkeypatch):
    """The run's summary, `happysad inspect`, its HTML report and the model card, from a record built
    by hand, with ML Metadata out of reach."""
    from happysad.components.anomalies import Anomaly
    from happysad.pipeline import configs, html_report, metadata, model_card, run_inspection, run_summary

    def no_store(*args, **kwargs):
        raise AssertionError("a formatter opened ML Metadata")

    monkeypatch.setattr(metadata, "open_store", no_store)
    monkeypatch.setattr(metadata.metadata_store, "MetadataStore", no_store)
    Ref = run_record.ArtifactRef
    record = run_record.RunRecord(
        "20261206-2",
        [run_record.ComponentRun("ExampleValidator", "COMPLETE", 0.4, {}, 4),
         run_record.ComponentRun("Trainer", "COMPLETE", 30.0, {"model": [Ref(15, "/root/Trainer/model/9")]}, 9),
         run_record.ComponentRun("Pusher", "COMPLETE", 0.1, {"pushed_model": [Ref(19, "/root/Pusher/12")]}, 12)],
        {"epochs_run": 9, "max_epochs": 15, "threshold": 0.999, "threshold_epoch": 9, "final_accuracy": 1.0,
         "final_val_accuracy": 0.9868, "class_names": ["happy", "sad"], "architecture": "reference"},
        "/root/Trainer/model_run/9/training_curves.png", {"binary_accuracy": 0.9868, "auc": 1.0, "example_count": 76.0},
        {"happy": {"binary_accuracy": 0.9722, "example_count": 36.0}}, [], True, str(tmp_path), "17960",
        anomalies={"ExampleValidator": [Anomaly("train", "class_name", "Unexpected string values", "angry")]},
        source_metrics={"noto": {"binary_accuracy": 0.9643, "example_count": 28.0}}, held_out={"noto": 0.9},
        serving_check={"blessed": True, "latency_ms": {"classify": 4.3}, "server_latency_ms": {"gRPC Classify": 6.6},
                       "problems": []},
        spans={"current": 3, "trained_on": [1, 3]}, training_curves_png=PNG,
        model_card=str(tmp_path / "model_card.html"))
    summary = run_summary.format_summary(record)
    assert "    [train] class_name: Unexpected string values - angry" in summary
    assert "spans: this run took span 3; the model trained on spans 1, 3" in summary
    assert "    noto                         28     0.964  held out: never trained on; gate >= 0.9" in summary
    assert f"model card: {tmp_path / 'model_card.html'}" in summary
    lineage = [run_record.LineageNode("PushedModel", 19, "/root/Pusher/12", "Pusher (execution 12)", [])]
    inspection = run_record.Inspection(
        record, [run_record.SplitStatistics("train", 76, {"happy": 36, "sad": 40}, {}, {"modes": {"RGB": 76}})],
        [("image", "BYTES", "required", "")], "/root/schema.pbtxt", lineage, None,
        samples={"happy": [("happy_000.png", PNG)]})
    shown = run_inspection.format_inspection(inspection)
    assert "  train: 76 examples; happy 36 (47%), sad 40 (53%)" in shown
    assert "  PushedModel 19 <- Pusher (execution 12): /root/Pusher/12" in shown
    page = html_report.render(inspection)
    assert 'id=model-card href="file://' in page and page.count("data:image/png;base64,") == 2  # curves, a sample
    card = model_card.render(model_card.build(record, None, configs.GateConfig()))
    assert "| model (execution 9, Trainer) | 15 | `/root/Trainer/model/9` |" in card["model_card.md"]
