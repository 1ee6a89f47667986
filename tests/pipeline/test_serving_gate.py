"""The serving check gates the Pusher: a blessed model that TF Serving could not serve is not pushed.

A small real TFX pipeline (local orchestrator, SQLite MLMD): importers for a
model, eval examples and a positive ModelBlessing, then the project's
ServingCheck and TFX's Pusher. The broken export is the one this project used
to push: TF2's loader runs it, TF Serving's session loader cannot.
"""
import json
import os

import tensorflow as tf
from tfx.components import Pusher
from tfx.dsl.components.common.importer import Importer
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.orchestration.local.local_dag_runner import LocalDagRunner
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts

from happysad.components.serving_check import ServingCheck
from happysad.components.trainer import serving_signatures
from happysad.components.trainer.models import reference_cnn
from happysad.data import emoji_faces
from happysad.pipeline import configs, metadata, run_inspection, run_record, run_summary
from helpers import example, export_the_old_way

NAME = "serving-gate"


def _examples_dir(path) -> str:
    """An Examples artifact's folder with one eval split of six committed faces."""
    os.makedirs(path / "Split-eval")
    with tf.io.TFRecordWriter(str(path / "Split-eval" / "data.tfrecord.gz"), options="GZIP") as writer:
        for n, c in enumerate(("happy", "sad")):
            for i in range(3):
                writer.write(example(image=(emoji_faces.DEFAULT_DIR / c / f"{c}_{i:03d}.png").read_bytes(), label=n))
    return str(path)


def _run(tmp_path, export) -> tuple:
    """Runs the small pipeline on a model written by `export(model, dir)`.
    Returns (run summary, inspection, serving dir)."""
    tf.keras.utils.set_random_seed(3)
    export(reference_cnn.build_model(), str(tmp_path / "model" / "Format-Serving"))
    model = Importer(source_uri=str(tmp_path / "model"), artifact_type=standard_artifacts.Model).with_id("model")
    examples = Importer(source_uri=_examples_dir(tmp_path / "examples"), artifact_type=standard_artifacts.Examples,
                        properties={"split_names": json.dumps(["eval"])}).with_id("examples")
    blessing = Importer(source_uri=str(tmp_path / "blessing"), artifact_type=standard_artifacts.ModelBlessing,
                        custom_properties={"blessed": 1}).with_id("blessing")
    check = ServingCheck(model=model.outputs["result"], examples=examples.outputs["result"],
                         class_names=json.dumps(["happy", "sad"]), over_server_fn=configs.SERVING_CHECK_OVER_SERVER)
    serving = tmp_path / "serving_model"
    pusher = Pusher(
        model=model.outputs["result"], model_blessing=blessing.outputs["result"],
        infra_blessing=check.outputs["blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(serving))))
    sqlite = str(tmp_path / "metadata.sqlite")
    LocalDagRunner().run(tfx_pipeline.Pipeline(
        pipeline_name=NAME, pipeline_root=str(tmp_path / "root"),
        components=[model, examples, blessing, check, pusher],
        metadata_connection_config=metadata.connection_config(sqlite)))
    return run_record.read_run(sqlite, NAME), run_record.inspect_run(sqlite, NAME), serving


def _good_export(model, path):
    serving_signatures.export(model, ["happy", "sad"], path)


def test_a_blessed_model_that_tf_serving_cannot_run_is_not_pushed_and_the_run_says_why(tmp_path):
    summary, inspection, serving = _run(tmp_path, export_the_old_way)
    assert summary.serving_check["blessed"] is False
    assert summary.pushed_dir is None and not serving.exists()
    text = run_summary.format_summary(summary)
    assert "serving check (TF Serving's session loader, then happysad serve on loopback): FAILED" in text
    assert "signature 'serving_default' fails through the session path" in text and "Could not find variable" in text
    assert "over happysad serve: gRPC Predict fails" in text
    assert "pushed: nothing (only a model that is blessed and passes the serving check is pushed)" in text
    shown = run_inspection.format_inspection(inspection)
    assert "  serving check (TF Serving's session loader, then happysad serve on loopback): FAILED" in shown
    assert "Could not find variable" in shown


def test_the_same_pipeline_pushes_a_model_tf_serving_can_run(tmp_path):
    summary, _, serving = _run(tmp_path, _good_export)
    assert summary.serving_check["blessed"] is True, summary.serving_check["problems"]
    assert (serving / summary.pushed_version / "saved_model.pb").exists()
    text = run_summary.format_summary(summary)
    assert "serving check (TF Serving's session loader, then happysad serve on loopback): passed" in text
    assert "over the server (median) REST classify" in text
