"""Each of the DataGate's inputs stops a run on its own.

One case per validator, each tripping only that one, so that a gate that
ignored any single validator would let its case through. (DriftValidator's
own case is in test_pipeline_e2e.py: it needs a previous run.)
"""
import io
import re
import shutil
import subprocess
from pathlib import Path

import tensorflow as tf
from PIL import Image

from happysad.data import emoji_faces, ingest

from helpers import HAPPYSAD, REPO
VALIDATORS = ("ExampleValidator", "ImageValidator", "SkewValidator", "DriftValidator")


def _run(tmp_path, *source):
    result = subprocess.run([HAPPYSAD, "run", *source, "--pipeline-root", str(tmp_path / "pipeline_output"),
                             "--serving-dir", str(tmp_path / "serving_model")],
                            cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 4, result.stdout + result.stderr  # rejected by the DataGate
    assert "REJECTED" in result.stderr and "Trainer" not in result.stdout.split("data validation:")[0]
    return result.stdout


def _only(out: str, tripped: str) -> None:
    for validator in VALIDATORS:
        line = next(line for line in out.splitlines() if line.startswith(f"  {validator}: "))
        assert ("no anomalies" in line) == (validator != tripped), line


def _in_eval_split(data: Path, rel: str) -> bool:
    """Ingestion's own partition of a file of the folder `data`."""
    return ingest.split_of(ingest.Source.of(data), rel) == "eval"


def _tfrecords(tmp_path, change) -> Path:
    """The committed faces ingested, then each tf.Example passed through change(index, example), into
    one file (ImportExampleGen then splits it by hash)."""
    result = ingest.ingest(emoji_faces.DEFAULT_DIR, tmp_path / "ingested", progress=False)
    out = tmp_path / "tfrecords" / "made-elsewhere.tfrecord.gz"
    out.parent.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(out), options="GZIP") as writer:
        records = tf.data.TFRecordDataset([str(p) for p in result.tfrecord_paths.values()], compression_type="GZIP")
        for i, record in enumerate(records.as_numpy_iterator()):
            example = tf.train.Example.FromString(record)
            change(i, example)
            writer.write(example.SerializeToString())
    return out.parent


def test_skew_alone_stops_the_run(tmp_path):
    """Every eval face happy: the eval split's class balance is far from train's."""
    data = tmp_path / "faces"
    counter = iter(range(100_000))
    for class_name in emoji_faces.CLASS_NAMES:
        (data / class_name).mkdir(parents=True)
        for i, face in enumerate(sorted((emoji_faces.DEFAULT_DIR / class_name).glob("*.png"))):
            to_eval = class_name == "happy" and i < 10  # 10 happy faces make the whole eval split
            rel = next(r for r in (f"{class_name}/{n:05d}.png" for n in counter) if _in_eval_split(data, r) == to_eval)
            shutil.copy(face, data / rel)
    out = _run(tmp_path, "--data", str(data))
    _only(out, "SkewValidator")
    assert "High Linfty distance" in out


def test_schema_anomalies_alone_stop_the_run(tmp_path):
    """A feature the curated schema does not know: ExampleValidator's, not the image checks'."""
    def add_column(_, example):
        example.features.feature["camera"].bytes_list.value.append(b"phone")

    out = _run(tmp_path, "--tfrecords", str(_tfrecords(tmp_path, add_column)))
    _only(out, "ExampleValidator")
    assert "camera" in out


def test_image_anomalies_alone_stop_the_run(tmp_path, browser):
    """Images of the wrong size: only decoding them shows it."""
    def shrink(i, example):
        if i < 3:
            image = example.features.feature["image"].bytes_list.value
            buf = io.BytesIO()
            Image.open(io.BytesIO(image[0])).resize((64, 64)).save(buf, "PNG")
            image[0] = buf.getvalue()

    out = _run(tmp_path, "--tfrecords", str(_tfrecords(tmp_path, shrink)))
    _only(out, "ImageValidator")
    # The 3 small faces, in whichever splits the hash put them.
    found = re.findall(r"image: Wrong image size - expected 150x150, found 64x64 in (\d+) of", out)
    assert sum(map(int, found)) == 3, out

    # inspect, and its HTML report, on the rejected run.
    report = tmp_path / "report.html"
    inspect = subprocess.run([HAPPYSAD, "inspect", "--pipeline-root", str(tmp_path / "pipeline_output"),
                              "--html", str(report)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert inspect.returncode == 0, inspect.stdout + inspect.stderr
    assert "DataGate FAILED" in inspect.stdout and "Wrong image size" in inspect.stdout
    browser.get(report.as_uri())
    assert browser.find_element("id", "verdict").text.startswith("Data rejected")
    assert "Wrong image size" in browser.find_element("tag name", "body").text
