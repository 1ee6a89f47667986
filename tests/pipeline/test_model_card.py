"""The model card written beside each pushed model."""
import json

from happysad.pipeline import configs, model_card, run_record, run_summary


def _summary(pushed_dir, noto_accuracy=0.9643):
    artifact = run_record.ArtifactRef
    components = [
        run_record.ComponentRun("Trainer", "COMPLETE", 20.0, {"model": [artifact(15, "/root/Trainer/model/9")]}, 9),
        run_record.ComponentRun("ExampleValidator", "COMPLETE", 1.0, {}, 5),
        run_record.ComponentRun("Pusher", "COMPLETE", 1.0, {"pushed_model": [artifact(19, "/root/Pusher/12")]}, 12),
    ]
    summary = run_record.RunRecord(
        "20261130-1", components,
        {"epochs_run": 9, "max_epochs": 15, "threshold": 0.999, "threshold_epoch": 9, "final_accuracy": 1.0,
         "final_val_accuracy": 0.9868, "seed": 42, "augment": True, "class_names": ["happy", "sad"]},
        None, {"binary_accuracy": 0.9868, "auc": 1.0, "example_count": 76.0},
        {"happy": {"binary_accuracy": 0.9722, "example_count": 36.0}}, [], True, str(pushed_dir), "17960")
    summary.source_metrics = {"noto": {"binary_accuracy": noto_accuracy, "example_count": 28.0},
                              "twemoji": {"binary_accuracy": 0.8889, "example_count": 9.0}}
    summary.held_out = {"noto": 0.85}
    return summary


def _report(tmp_path):
    path = tmp_path / "ingest_report.json"
    path.write_text(json.dumps({"held_out": ["noto"], "sources": {
        "noto": {"eval": {"happy": 14, "sad": 14}},
        "twemoji": {"train": {"happy": 10, "sad": 9}, "eval": {"happy": 4, "sad": 5}}}}))
    return path


def test_the_card_covers_data_training_metrics_blessing_lineage_and_limits(tmp_path):
    version = tmp_path / "happysad" / "17960"
    version.mkdir(parents=True)
    written = model_card.write(_summary(version), _report(tmp_path), configs.GateConfig())
    assert sorted(p.name for p in written) == ["model_card.html", "model_card.md"]
    md = (version / "model_card.md").read_text()
    assert "| noto | held out: never trained on | 0 | 0 | 14 | 14 |" in md  # data, by source and split
    assert "- ExampleValidator: no anomalies" in md  # validation verdicts
    assert "reached 0.999 at epoch 9" in md  # training
    assert "| noto | 28 | 0.9643 | held out; at least 0.85 |" in md  # metrics by source, with the gate
    assert "- accuracy on held-out noto at least 0.85" in md and "- AUC at least (two classes) 0.9" in md
    assert "| model (execution 9, Trainer) | 15 | `/root/Trainer/model/9` |" in md  # lineage ids
    assert "Weakest on: twemoji (0.8889)" in md  # known limits, from the measurements
    assert not list(version.glob(".*partial"))


def test_no_card_for_a_run_that_pushed_nothing(tmp_path):
    summary = _summary(tmp_path)
    summary.pushed_dir = None
    assert model_card.write(summary, _report(tmp_path)) == []
    assert not list(tmp_path.glob("model_card.*"))


def test_the_html_card_escapes_what_it_shows(tmp_path):
    version = tmp_path / "v"
    version.mkdir()
    summary = _summary(version)
    summary.source_metrics["<script>x</script>"] = {"binary_accuracy": 1.0, "example_count": 1.0}
    model_card.write(summary, _report(tmp_path))
    html = (version / "model_card.html").read_text()
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html


def test_the_card_reports_the_tflite_model_beside_the_savedmodel(tmp_path):
    version = tmp_path / "happysad" / "17960"
    version.mkdir(parents=True)
    summary = _summary(version)
    variant = {"bytes": 2_399_664, "latency_ms_one_core": 2.31}
    summary.tflite = {"chosen": "int8", "variants": {"int8": variant, "float32": {**variant, "bytes": 9_570_136}},
                      "metrics": {"binary_accuracy": 0.9868}, "source_metrics": {"noto": {"binary_accuracy": 0.9643}},
                      "blessed": True, "failed_thresholds": []}
    model_card.write(summary, _report(tmp_path), configs.GateConfig())
    md = (version / "model_card.md").read_text()
    assert "## TFLite (for phones)" in md
    assert ("TFLite (int8, 2.4 MB; float32 9.6 MB): TFMA on the eval split: accuracy 0.9868 (SavedModel 0.9868), "
            "noto 0.964; batch-1 on one core 2.31 ms; passes the gate's thresholds") in md
    del summary.tflite["variants"]["float32"]  # converted once: int8 alone, as when it is accurate enough
    assert run_summary.format_tflite(summary)[0].startswith("TFLite (int8, 2.4 MB): TFMA on the eval split")
    assert '<h2 id="tflite">' in (version / "model_card.html").read_text()
