"""End to end: runs that must end without a push - a component that fails, TFRecords
with wrong images or classes, and a model trained on shuffled labels that the gate refuses."""
import random
import shutil
import subprocess
from pathlib import Path

from ml_metadata.proto import metadata_store_pb2

from happysad.data import emoji_faces

from e2e_workspace import State, Workspace, inspect, workspace
from helpers import HAPPYSAD, REPO


def test_a_failing_component_is_named_and_exits_non_zero(tmp_path):
    """Its own workspace and its own failure: TFRecords whose name is right and
    whose bytes are not GZIP, so ImportExampleGen itself fails."""
    records = tmp_path / "tfrecords"
    records.mkdir()
    (records / "broken.tfrecord.gz").write_bytes(b"not gzip at all" * 100)
    ws = Workspace(data=None, root=tmp_path / "pipeline_output", serving=tmp_path / "serving_model")
    result = subprocess.run(
        [HAPPYSAD, "run", "--tfrecords", str(records), "--pipeline-root", str(ws.root),
         "--serving-dir", str(ws.serving)], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED: component ImportExampleGen failed" in result.stderr
    assert "full log:" in result.stderr
    assert [e.last_known_state for e in ws.executions("ImportExampleGen")] == [State.FAILED]
    assert not ws.serving.exists()


def test_model_trained_on_shuffled_labels_is_not_blessed_or_pushed(tmp_path, browser):
    """The gate on a broken model, with the LocalDagRunner and a Beam option for a change.
    The reference CNN: a test of the gate, not of the model."""
    ws = workspace(tmp_path)
    ws.sources = None  # the generated faces alone, every label shuffled
    files = sorted(ws.data.rglob("*.png"))
    rng = random.Random(1)
    labels = ["happy"] * 40 + ["sad"] * 40
    rng.shuffle(labels)
    staging = ws.data.parent / "staging"
    for cls in emoji_faces.CLASS_NAMES:
        (staging / cls).mkdir(parents=True)
    for i, (f, cls) in enumerate(zip(files, labels)):
        shutil.move(str(f), staging / cls / f"{i:03d}.png")
    shutil.rmtree(ws.data)
    staging.rename(ws.data)

    result = ws.run("--runner", "local", "--beam-arg=--direct_running_mode=in_memory", "--arch", "reference",
                    expect=(3,))
    assert "blessed: NO" in result.stdout and "binary_accuracy value" in result.stdout
    # Given a Beam option, TFX's Beam executors build an sdist of TFX each: the run removes them.
    assert ws.files_left_in_tmp() == []
    assert "pushed: nothing" in result.stdout
    assert ws.versions() == []
    (pusher,) = ws.executions("Pusher")
    (pushed,) = ws.io(pusher, metadata_store_pb2.Event.OUTPUT, "pushed_model")
    assert pushed.custom_properties["pushed"].int_value == 0
    report = ws.root.parent / "report.html"
    inspect(ws, "--html", str(report))
    browser.get(report.as_uri())
    assert browser.find_element("id", "verdict").text.startswith("Not blessed")
    assert "binary_accuracy value" in browser.find_element("tag name", "body").text


def _write_tfrecords(path: Path, examples) -> None:
    import tensorflow as tf

    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for example in examples:
            writer.write(example.SerializeToString())


def test_tfrecords_with_wrong_images_or_classes_stop_before_training(tmp_path):
    """TFRecords made elsewhere (not ingested): validation is all that stands
    between them and the Trainer. Made from the generated faces, 7 of them spoilt."""
    import io

    import tensorflow as tf
    from PIL import Image

    from happysad.data import ingest

    good = ingest.ingest(emoji_faces.DEFAULT_DIR, tmp_path / "ingested")
    ingested = tf.data.TFRecordDataset([str(p) for p in sorted(good.tfrecord_paths.values())],
                                       compression_type="GZIP")
    examples = [tf.train.Example.FromString(r) for r in ingested.as_numpy_iterator()]
    for i, record in enumerate(examples[:7]):
        feature = record.features.feature
        image = Image.open(io.BytesIO(feature["image"].bytes_list.value[0]))
        if i < 2:
            image = image.resize((64, 64))
        elif i < 4:
            image = image.convert("L")
        elif i < 6:
            feature["class_name"].bytes_list.value[0] = b"angry"
        buf = io.BytesIO()
        image.save(buf, "PNG")
        # The last one is cut short: it must stop the run at the gate, before anything decodes it to use it.
        feature["image"].bytes_list.value[0] = buf.getvalue()[:2000] if i == 6 else buf.getvalue()
    _write_tfrecords(tmp_path / "tfrecords" / "made-elsewhere.tfrecord.gz", examples)

    root, serving = tmp_path / "pipeline_output", tmp_path / "serving_model"
    result = subprocess.run(
        [HAPPYSAD, "run", "--tfrecords", str(tmp_path / "tfrecords"), "--pipeline-root", str(root),
         "--serving-dir", str(serving)], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 4, result.stdout + result.stderr
    out = result.stdout
    assert "image: Wrong image size - expected 150x150, found 64x64 in " in out
    assert "image: Wrong colour mode - expected RGB or RGBA, found L in " in out
    assert "class_name: Unexpected string values" in out and "angry" in out
    assert "image: Image does not decode" in out
    table = out.split("  component ")[1].split("data validation:")[0]
    assert "DataGate                        FAILED" in table and "Trainer" not in table
    assert "PixelExamples" not in table  # it decodes every eval image: only after the gate
    assert not serving.exists()
