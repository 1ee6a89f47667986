"""The pipeline's serving check: a model TF Serving could not serve is not blessed."""
import numpy as np
import pytest
import tensorflow as tf
from tfx.utils import import_utils

from happysad.components import serving_check
from happysad import contract
from happysad.components.trainer import serving_signatures
from happysad.components.trainer.models import reference_cnn
from happysad.data import emoji_faces
from happysad.pipeline import configs
from happysad.serving import loopback_check
from helpers import example, export_the_old_way


def _examples() -> list:
    files = [emoji_faces.DEFAULT_DIR / c / f"{c}_{i:03d}.png" for c in ("happy", "sad") for i in range(2)]
    return [example(image=f.read_bytes(), label=n // 2) for n, f in enumerate(files)]


def _check(path, over_server=False, **kwargs) -> dict:
    return serving_check.check_model(str(path), _examples(), ["happy", "sad"], latency_budget_ms=5000,
                                     serve=loopback_check.start if over_server else None, **kwargs)


@pytest.fixture(scope="module")
def model():
    tf.keras.utils.set_random_seed(5)
    return reference_cnn.build_model()


def test_the_projects_export_passes(model, tmp_path):
    serving_signatures.export(model, ["happy", "sad"], str(tmp_path / "1"))
    result = _check(tmp_path / "1")
    assert result["problems"] == [] and result["blessed"]
    assert set(result["latency_ms"]) == {"serving_default", "classify", contract.EVAL_SIGNATURE}


def test_the_old_export_is_refused_with_the_session_loaders_words(model, tmp_path):
    path = str(tmp_path / "old")
    export_the_old_way(model, path)
    # The stand-in that hid it: TF2's object loader answers.
    face = (emoji_faces.DEFAULT_DIR / "sad" / "sad_000.png").read_bytes()
    answer = tf.saved_model.load(path).signatures["serving_default"](images=tf.constant([face]))
    assert answer["probabilities"].shape == (1, 2)
    result = _check(path)
    assert not result["blessed"]
    assert any("signature 'serving_default' fails through the session path" in p and "Could not find variable" in p
               for p in result["problems"]), result["problems"]
    assert any("signature 'classify' is missing" in p for p in result["problems"])


def test_a_saved_model_that_does_not_load_is_refused(model, tmp_path):
    serving_signatures.export(model, ["happy", "sad"], str(tmp_path / "1"))
    (tmp_path / "1" / "saved_model.pb").write_bytes(b"not a protobuf")
    result = _check(tmp_path / "1")
    assert not result["blessed"]
    assert result["problems"][0].startswith("the SavedModel does not load through TF Serving's session-based loader")


def test_wrong_class_names_and_a_predict_method_on_classify_are_refused(model, tmp_path):
    path = str(tmp_path / "1")
    serving_signatures.export(model, ["sad", "happy"], path)
    serving_signatures._set_method_name(path, "classify", "tensorflow/serving/predict")
    result = _check(path)
    assert not result["blessed"]
    assert any("method_name 'tensorflow/serving/predict'" in p for p in result["problems"])
    assert any("classify names classes ['sad', 'happy'], expected ['happy', 'sad']" in p for p in result["problems"])


def test_a_slow_model_is_refused_by_the_latency_budget(model, tmp_path):
    serving_signatures.export(model, ["happy", "sad"], str(tmp_path / "1"))
    result = serving_check.check_model(str(tmp_path / "1"), _examples(), ["happy", "sad"], latency_budget_ms=0.001)
    assert not result["blessed"]
    assert any("over the 0.001 ms budget" in p for p in result["problems"])
    assert np.all([v > 0 for v in result["latency_ms"].values()])


# Over a real `happysad serve` on a free loopback port, as TF Serving would serve it.

def test_the_pipeline_names_the_loopback_check_as_the_component_imports_it():
    module, name = configs.SERVING_CHECK_OVER_SERVER.rsplit(".", 1)
    assert import_utils.import_func_from_module(module, name) is loopback_check.start


def test_over_the_server_the_projects_export_answers_every_api_in_budget(model, tmp_path):
    serving_signatures.export(model, ["happy", "sad"], str(tmp_path / "1"),
                              warmup_images=[e.features.feature["image"].bytes_list.value[0] for e in
                                             map(tf.train.Example.FromString, _examples()[:2])])
    result = _check(tmp_path / "1", over_server=True, log_dir=str(tmp_path))
    assert result["problems"] == [] and result["blessed"]
    assert "over happysad serve: version 1 AVAILABLE; 4 warm-up requests replayed over gRPC" in result["checks"]
    assert set(result["server_latency_ms"]) == {"gRPC Predict", "gRPC Classify", "REST predict", "REST classify"}
    assert all(0 < ms < 5000 for ms in result["server_latency_ms"].values())
    assert "loaded candidate version 1" in (tmp_path / "serve.log").read_text()
    print("\nover happysad serve, batch-1 median ms:", result["server_latency_ms"])


def test_over_the_server_the_old_export_is_refused_on_every_api(model, tmp_path):
    path = str(tmp_path / "old")
    export_the_old_way(model, path)
    result = _check(path, over_server=True)
    assert not result["blessed"]
    server = [p for p in result["problems"] if p.startswith("over happysad serve")]
    assert any("gRPC Predict fails" in p and "Could not find variable" in p for p in server), server
    assert any("REST classify fails" in p for p in server), server


def test_over_the_server_a_model_that_does_not_load_is_not_available(model, tmp_path):
    serving_signatures.export(model, ["happy", "sad"], str(tmp_path / "1"))
    (tmp_path / "1" / "saved_model.pb").write_bytes(b"not a protobuf")
    result = _check(tmp_path / "1", over_server=True)
    assert any(p.startswith("over happysad serve: the candidate is not AVAILABLE") for p in result["problems"])


def test_over_the_server_wrong_class_names_and_a_slow_answer_are_refused(model, tmp_path):
    serving_signatures.export(model, ["sad", "happy"], str(tmp_path / "1"))
    result = serving_check.check_model(str(tmp_path / "1"), _examples(), ["happy", "sad"], latency_budget_ms=0.001,
                                       serve=loopback_check.start)
    server = [p for p in result["problems"] if p.startswith("over happysad serve")]
    assert any("gRPC Classify names classes ['sad', 'happy'], expected ['happy', 'sad']" in p for p in server), server
    assert any("REST classify names classes ['sad', 'happy']" in p for p in server), server
    assert any("REST predict took" in p and "over the 0.001 ms budget" in p for p in server), server
