"""Adding an architecture is one module and one registry line: a toy CNN, registered through the
registry alone, trains in the Trainer's run_fn, exports a SavedModel TF Serving's loader runs,
and `explain` shows its convolution; the registry describes it (the model card's and `inspect`'s line)."""
import dataclasses
import json
import subprocess
import types

import numpy as np
import pytest
import tensorflow as tf

from happysad import contract
from happysad.components.saved_model_bundle import SavedModelBundle
from happysad.components.trainer import models, trainer_module
from happysad.components.trainer.training_config import TrainingConfig
from happysad.data import emoji_faces
from happysad.serving import explain
from helpers import HAPPYSAD, example
import toy_architecture

NAME = "toy"
CLASSES = ["happy", "sad"]


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(models.ARCHITECTURES, NAME, toy_architecture)  # the one registry line


def _split(path, count: int) -> str:
    faces = {c: sorted((emoji_faces.DEFAULT_DIR / c).glob("*.png")) for c in CLASSES}
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for i in range(count):
            label = i % 2
            writer.write(example(image=faces[CLASSES[label]][i // 2].read_bytes(), label=label,
                                 class_name=CLASSES[label]))
    return str(path)


def test_a_registered_toy_model_trains_exports_and_explains(registered, tmp_path):
    training = TrainingConfig(architecture=NAME, epochs=2, seed=1)
    fn_args = types.SimpleNamespace(
        train_files=[_split(tmp_path / "train.tfrecord.gz", 20)], eval_files=[_split(tmp_path / "eval.tfrecord.gz", 8)],
        serving_model_dir=str(tmp_path / "serving"), model_run_dir=str(tmp_path / "run"),
        custom_config={**dataclasses.asdict(training), "class_names": CLASSES})
    trainer_module.run_fn(fn_args)

    summary = json.loads((tmp_path / "run" / contract.TRAINING_SUMMARY_FILE).read_text())
    assert summary["architecture"] == NAME and summary["epochs_run"] >= 1
    assert models.description(models.trained_architecture(summary)) == toy_architecture.DESCRIPTION

    face = (emoji_faces.DEFAULT_DIR / "sad" / "sad_001.png").read_bytes()
    bundle = SavedModelBundle(fn_args.serving_model_dir)  # TF Serving's session loader
    try:
        assert bundle.warm_up() > 0
        served = bundle.run(contract.SERVING_SIGNATURE, {"images": np.array([face], dtype=object)})
    finally:
        bundle.close()
    np.testing.assert_allclose(served[contract.PROBABILITIES_OUTPUT].sum(axis=1), 1.0, rtol=1e-5)

    explanation = explain.explain(fn_args.serving_model_dir, face)
    assert explanation.class_name in CLASSES
    assert [name for name, _ in explanation.activations] == ["toy_conv"]
    assert np.isfinite(explanation.saliency).all() and explanation.saliency.max() == 1.0

    # `happysad explain` in a process whose registry lacks the toy line: one clear line, no traceback.
    image = tmp_path / "sad_001.png"
    image.write_bytes(face)
    refused = subprocess.run([HAPPYSAD, "explain", str(image), "--model-dir", fn_args.serving_model_dir,
                              "--out", str(tmp_path / "explained.png")], capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
    (line,) = [line for line in refused.stderr.splitlines() if line.startswith("error: ")]
    assert toy_architecture.KERAS_NAME in line and models.DEFAULT in line, line
    assert not (tmp_path / "explained.png").exists()


def test_without_its_registry_line_explain_refuses_the_model_naming_the_known_ones():
    known = models.get(models.DEFAULT).KERAS_NAME
    with pytest.raises(ValueError, match=rf"'{toy_architecture.KERAS_NAME}'.*{known} \({models.DEFAULT}\)"):
        models.of_keras_model(toy_architecture.build_model())
