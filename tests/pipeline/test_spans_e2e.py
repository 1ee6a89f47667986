"""Continuous training on data that arrives in spans: a good span, a drifted one, a good one again.

A span root holds span-1/, span-2/, ... (each a class-per-folder tree). Each
`happysad run` takes the newest span; the drift check compares it with the
last span that was accepted; the Trainer trains on the latest K accepted
spans; the Evaluator's baseline is the model blessed on the older spans.
"""
import shutil
import subprocess

from ml_metadata.proto import metadata_store_pb2

from happysad.data import emoji_faces
from happysad.pipeline import configs, metadata
from helpers import HAPPYSAD, REPO


def _run(data, root, serving, expect: int) -> str:
    # The reference CNN: the faster model; this is a test of spans, not of the model.
    result = subprocess.run([HAPPYSAD, "run", "--data", str(data), "--pipeline-root", str(root), "--serving-dir",
                             str(serving), "--span-window", "3", "--arch", "reference"], cwd=REPO,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == expect, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout + result.stderr


def _versions(serving) -> list:
    base = serving / configs.MODEL_NAME
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.exists() else []


def test_a_good_span_then_a_drifted_one_is_rejected_then_a_good_one_trains_on_the_accepted_spans(tmp_path):
    data, root, serving = tmp_path / "arriving", tmp_path / "pipeline_output", tmp_path / "serving_model"
    emoji_faces.generate(data / "span-1", count=80, seed=101)
    first = _run(data, root, serving, expect=0)
    assert "this run takes span 1" in first
    assert "spans: this run took span 1; the model trained on span 1" in first
    (v1,) = _versions(serving)

    # Span 2 arrives with most sad faces missing: the class balance drifts (6 of 46 sad).
    faces = emoji_faces.generate(data / "span-2", count=80, seed=202)
    for face in faces["sad"][6:]:
        face.unlink()
    second = _run(data, root, serving, expect=4)
    assert "DriftValidator" in second and "class_name" in second, second[-3000:]
    assert "REJECTED" in second
    assert _versions(serving) == [v1]  # nothing trained, nothing pushed

    # Span 3 is good again. Its drift baseline is span 1 (the last accepted), not the rejected span 2,
    # and the model trains on spans 1 and 3.
    emoji_faces.generate(data / "span-3", count=80, seed=303)
    third = _run(data, root, serving, expect=0)
    assert "this run takes span 3" in third
    assert "spans: this run took span 3; the model trained on spans 1, 3" in third
    assert "DriftValidator: no anomalies" in third
    assert "blessed: yes" in third
    versions = _versions(serving)
    assert len(versions) == 2 and versions[0] == v1  # a new version beside the first

    store = metadata.open_store(str(root / "metadata.sqlite"))
    trainers = metadata.node_executions(store, configs.PIPELINE_NAME, "Trainer")
    evaluators = metadata.node_executions(store, configs.PIPELINE_NAME, "Evaluator")
    first_model = metadata.artifacts(store, trainers[0].id)["model"][0]
    baseline = metadata.artifacts(store, evaluators[-1].id, metadata_store_pb2.Event.INPUT)["baseline_model"]
    assert [m.id for m in baseline] == [first_model.id]  # the model blessed on the older span
    trained = metadata.artifacts(store, trainers[-1].id, metadata_store_pb2.Event.INPUT)["examples"]
    assert sorted(a.custom_properties["span"].int_value for a in trained) == [1, 3]

    shown = subprocess.run([HAPPYSAD, "inspect", "--pipeline-root", str(root)], cwd=REPO, capture_output=True,
                           text=True, timeout=300)
    assert "spans: this run took span 3; the model trained on spans 1, 3" in shown.stdout, shown.stdout[-3000:]


def test_happysad_ingest_writes_a_span_and_run_takes_the_newest(tmp_path):
    """`happysad ingest --span N --out DIR` lays out spans; `happysad run --tfrecords DIR` reads them."""
    from happysad.data import ingest

    faces = tmp_path / "faces"
    shutil.copytree(emoji_faces.DEFAULT_DIR, faces)
    for span in (1, 2):
        result = subprocess.run([HAPPYSAD, "ingest", "--data", str(faces), "--out", str(tmp_path / "spans"),
                                 "--span", str(span)], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
    assert sorted(ingest.ingested_spans(tmp_path / "spans")) == [1, 2]
